/* f32 FMA peak of this machine: a register-only loop of independent fused multiply-adds
 * (no memory traffic), on 1 thread and on every online core at once. This is the ceiling that
 * the analytic bound in BENCHMARKS.md divides by; GEMM reaches a share of it.
 *
 *   gcc -O2 -pthread bench/peak/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak [SECONDS]
 *
 * Prints GFLOP/s for AVX2 (8 lanes) and, where the CPU has it, AVX-512 (16 lanes);
 * 1 FMA = 2 FLOPs. Each rate is given per wall-clock second and per second of the thread's
 * own CPU time: on a shared machine the first drops when other processes take the cores, the
 * second is the rate of the core while it runs this loop. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ACC 12 /* independent accumulators: more than FMA latency x FMA ports */
#define INNER 1000000L

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
static double cpu_now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

struct rate { double wall, cpu; }; /* GFLOP/s per wall second, per thread CPU second */

static double seconds = 1.0;
static volatile float sink;

/* 12 independent accumulators written out, so they live in registers (an array would be
 * kept on the stack and measure store-to-load latency instead). */
#define FMA12(F, a, m, c)                                                                      \
    a0 = F(a0, m, c); a1 = F(a1, m, c); a2 = F(a2, m, c); a3 = F(a3, m, c);                    \
    a4 = F(a4, m, c); a5 = F(a5, m, c); a6 = F(a6, m, c); a7 = F(a7, m, c);                    \
    a8 = F(a8, m, c); a9 = F(a9, m, c); a10 = F(a10, m, c); a11 = F(a11, m, c);

#define KERNEL(NAME, TARGET, VEC, LANES, SET1, FMADD, ADD, FIRST)                               \
    __attribute__((target(TARGET))) static struct rate NAME(void) {                            \
        VEC a0 = SET1(0.0f), a1 = SET1(0.1f), a2 = SET1(0.2f), a3 = SET1(0.3f);                 \
        VEC a4 = SET1(0.4f), a5 = SET1(0.5f), a6 = SET1(0.6f), a7 = SET1(0.7f);                 \
        VEC a8 = SET1(0.8f), a9 = SET1(0.9f), a10 = SET1(1.0f), a11 = SET1(1.1f);               \
        const VEC m = SET1(0.999999f), c = SET1(1e-7f);                                        \
        long iters = 0;                                                                        \
        double t0 = now(), c0 = cpu_now(), t;                                                  \
        do {                                                                                   \
            for (long k = 0; k < INNER; k++) { FMA12(FMADD, a, m, c) }                          \
            iters += INNER;                                                                    \
            t = now();                                                                         \
        } while (t - t0 < seconds);                                                            \
        VEC s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));             \
        s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                           \
        sink = FIRST(s);                                                                       \
        double flops = 2.0 * LANES * ACC * (double)iters;                                      \
        return (struct rate){flops / (t - t0) / 1e9, flops / (cpu_now() - c0) / 1e9};          \
    }

KERNEL(run_avx2, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
       _mm256_cvtss_f32)
KERNEL(run_avx512, "avx512f", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
       _mm512_cvtss_f32)

typedef struct rate (*kernel)(void);
struct job { kernel k; struct rate r; };
static void *worker(void *p) {
    struct job *j = p;
    j->r = j->k();
    return NULL;
}

static void measure(const char *name, kernel k, int threads) {
    pthread_t th[256];
    struct job jobs[256];
    for (int i = 0; i < threads; i++) {
        jobs[i].k = k;
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    double wall = 0, cpu = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        wall += jobs[i].r.wall;
        cpu += jobs[i].r.cpu;
    }
    printf("%-7s %2d thread(s): %7.1f GFLOP/s per wall second, %7.1f per CPU second (%.1f per "
           "thread)\n",
           name, threads, wall, cpu, cpu / threads);
}

int main(int argc, char **argv) {
    if (argc > 1) seconds = atof(argv[1]);
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 256) cores = 256;
    __builtin_cpu_init();
    for (int rep = 0; rep < 3; rep++) {
        measure("avx2", run_avx2, 1);
        measure("avx2", run_avx2, cores);
        if (__builtin_cpu_supports("avx512f")) {
            measure("avx512", run_avx512, 1);
            measure("avx512", run_avx512, cores);
        }
    }
    return 0;
}

/* The C reference for the threads probe: hold N threads blocked in sem_wait, then release
 * and join them all. Same start routine, same semaphore, same default stack (glibc's, from
 * RLIMIT_STACK). Build: cc -O2 -pthread -o hold hold.c   Run: ./hold 30000
 * With -DCOUNT_MAPS it also prints /proc/self/maps's lines before and at the peak
 * (bench/runtimes/run.py); without it the timed loop is untouched. With HOLD_WAIT set in the
 * environment it writes "ready" to stderr and waits for a line on stdin before it starts, so
 * a test can inspect it first (as every program in bench/runtimes does). */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef COUNT_MAPS
static long maps(void) {
    FILE *file = fopen("/proc/self/maps", "r");
    long lines = 0;
    for (int c; file && (c = getc(file)) != EOF;) lines += c == '\n';
    if (file) fclose(file);
    return lines;
}
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 30000;
    pthread_t *tids = calloc(count, sizeof *tids);
    if (getenv("HOLD_WAIT")) {
        fprintf(stderr, "ready\n");
        for (int c = getchar(); c != EOF && c != '\n'; c = getchar()) {}
    }
    sem_t semaphore;
    sem_init(&semaphore, 0, 0);
#ifdef COUNT_MAPS
    long maps_before = maps();
#endif
    long created = 0;
    double started = now();
    for (; created < count; created++) {
        int rc = pthread_create(&tids[created], NULL, (void *(*)(void *))sem_wait, &semaphore);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s after %ld\n", strerror(rc), created);
            break;
        }
    }
    double released = now();
#ifdef COUNT_MAPS
    printf("{\"runtime\": \"c\", \"held\": %ld, \"maps_before\": %ld, \"maps_peak\": %ld}\n", created,
           maps_before, maps());
    released = now();
#endif
    for (long i = 0; i < created; i++) sem_post(&semaphore);
    for (long i = 0; i < created; i++) pthread_join(tids[i], NULL);
    /* Same keys as the probe's JSON, so the benchmark can compare the phases. */
    printf("{\"held\": %ld, \"create_seconds\": %.6f, \"join_seconds\": %.6f}\n", created,
           released - started, now() - released);
    return created == count ? 0 : 1;
}

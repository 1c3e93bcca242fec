/* The C reference for the threads probe: hold N threads blocked in sem_wait, then release
 * and join them all. Same start routine, same semaphore, same default stack (glibc's, from
 * RLIMIT_STACK). Build: cc -O2 -pthread -o hold hold.c   Run: ./hold 30000 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? strtol(argv[1], NULL, 10) : 30000;
    pthread_t *tids = calloc(count, sizeof *tids);
    sem_t semaphore;
    sem_init(&semaphore, 0, 0);
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
    for (long i = 0; i < created; i++) sem_post(&semaphore);
    for (long i = 0; i < created; i++) pthread_join(tids[i], NULL);
    /* Same keys as the probe's JSON, so the benchmark can compare the phases. */
    printf("{\"held\": %ld, \"create_seconds\": %.6f, \"join_seconds\": %.6f}\n", created,
           released - started, now() - released);
    return created == count ? 0 : 1;
}

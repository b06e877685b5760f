/*
 * Reference loop for the benchmark: reads every entry of a pinned BPF map with
 * BPF_MAP_LOOKUP_BATCH, as fast as C can, and prints "<entries> <nanoseconds>".
 * Same batch size as CalicoBpf.Core (4096); keys and values are read and discarded.
 * Maps without batch lookups (LPM tries: cali_v4_routes) are read key by key, with
 * BPF_MAP_GET_NEXT_KEY and BPF_MAP_LOOKUP_ELEM, as Core and bpftool read them.
 * Build: cc -O2 -o ct_batch ct_batch.c
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t key_by_key(int fd, unsigned key_size, unsigned value_size) {
    char *key = malloc(key_size), *next = malloc(key_size), *value = malloc(value_size);
    union bpf_attr attr;
    uint64_t n = 0;
    int first = 1;
    for (;;) {
        memset(&attr, 0, sizeof(attr));
        attr.map_fd = fd;
        attr.key = first ? 0 : (uint64_t)(uintptr_t)key;
        attr.next_key = (uint64_t)(uintptr_t)next;
        if (sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr) < 0) break;
        memset(&attr, 0, sizeof(attr));
        attr.map_fd = fd;
        attr.key = (uint64_t)(uintptr_t)next;
        attr.value = (uint64_t)(uintptr_t)value;
        if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) == 0) n++;
        memcpy(key, next, key_size);
        first = 0;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s PIN [BATCH]\n", argv[0]); return 2; }
    unsigned batch = argc > 2 ? (unsigned)atoi(argv[2]) : 4096;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.pathname = (uint64_t)(uintptr_t)argv[1];
    attr.file_flags = BPF_F_RDONLY;
    int fd = (int)sys_bpf(BPF_OBJ_GET, &attr);
    if (fd < 0) { perror("BPF_OBJ_GET"); return 1; }

    struct bpf_map_info info;
    memset(&info, 0, sizeof(info));
    memset(&attr, 0, sizeof(attr));
    attr.info.bpf_fd = fd;
    attr.info.info_len = sizeof(info);
    attr.info.info = (uint64_t)(uintptr_t)&info;
    if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0) { perror("BPF_OBJ_GET_INFO_BY_FD"); return 1; }

    char *keys = malloc((size_t)batch * info.key_size);
    char *values = malloc((size_t)batch * info.value_size);
    /* A hash map's batch token is a u32 bucket; the generic one (LPM tries) is the last key read. */
    size_t token_size = info.key_size > 8 ? info.key_size : 8;
    char *in_token = calloc(1, token_size), *out_token = calloc(1, token_size);
    uint64_t total = 0;
    int first = 1;
    uint64_t t0 = now_ns();
    for (;;) {
        memset(&attr, 0, sizeof(attr));
        attr.batch.in_batch = first ? 0 : (uint64_t)(uintptr_t)in_token;
        attr.batch.out_batch = (uint64_t)(uintptr_t)out_token;
        attr.batch.keys = (uint64_t)(uintptr_t)keys;
        attr.batch.values = (uint64_t)(uintptr_t)values;
        attr.batch.count = batch;
        attr.batch.map_fd = fd;
        long rc = sys_bpf(BPF_MAP_LOOKUP_BATCH, &attr);
        int err = rc < 0 ? errno : 0;
        if (rc < 0 && first && (err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP || err == 524 /* ENOTSUPP */)) {
            total = key_by_key(fd, info.key_size, info.value_size);
            break;
        }
        if (rc < 0 && err != ENOENT) { perror("BPF_MAP_LOOKUP_BATCH"); return 1; }
        total += attr.batch.count;
        if (err == ENOENT) break;
        memcpy(in_token, out_token, token_size);
        first = 0;
    }
    uint64_t t1 = now_ns();
    printf("%llu %llu\n", (unsigned long long)total, (unsigned long long)(t1 - t0));
    return 0;
}

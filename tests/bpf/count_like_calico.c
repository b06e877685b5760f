/*
 * A tc program for the sampling tests: it counts each packet as Calico's tc programs count a packet
 * its policy denies, then drops it (TC_ACT_SHOT), so the counters move by real packets on the real
 * kernel. Per packet, on the per-CPU slot of the CPU that runs it:
 *   - cali_counters[{ifindex, hook}]: TotalPackets (index 0) and DroppedByPolicy (index 4) += 1, as
 *     tc.c counts every packet and the drop program counts a policy drop (bpf-gpl/counters.h,
 *     COUNTER_TOTAL_PACKETS and CALI_REASON_DROPPED_BY_POLICY's slot);
 *   - cali_rule_ctrs[RULE_ID] += 1, as the policy program counts the rule that matched
 *     (felix/bpf/polprog: the rule's match id, a u64 key, a per-CPU u64 value).
 * The counter entry must exist (Felix creates it when it attaches); a missing one is not created.
 * With -DTAG_TEXT=<iface padded to 15 with ->-<I|E> (unquoted: the shells' quoting differs) it also prints the lines Calico's debug programs print
 * for such a packet, in their format (as the realcalico captures hold them): "New packet at ifindex=..;
 * mark=..", "IP s=A d=B" and the drop program's last line, "DENY due to policy".
 * The maps are the node's own, pinned: bpftool prog load ... map name counters pinned PIN map name
 * rule_ctrs pinned PIN reuses them (their real sizes replace the ones declared here).
 * Build: clang -O2 -g -target bpf -c count_like_calico.c -o count_like_calico.o [-DHOOK=1] [-DRULE_ID=0x...]
 *        [-DTAG_TEXT=cali5a3e1d0c0f1-E]
 */
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define BPF_MAP_TYPE_PERCPU_HASH 5
#define TC_ACT_SHOT 2
#ifndef HOOK
#define HOOK 0
#endif
#define STRINGIFY2(x) #x
#define STRINGIFY(x) STRINGIFY2(x)
#ifdef TAG_TEXT
#define TAG STRINGIFY(TAG_TEXT)
#endif
#ifndef RULE_ID
#define RULE_ID 0x5e11ULL
#endif

/* The start of struct __sk_buff (include/uapi/linux/bpf.h), up to data_end. */
struct __sk_buff {
    __u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority, ingress_ifindex, ifindex;
    __u32 tc_index, cb[5], hash, tc_classid, data, data_end;
};

struct counters_key { __u32 ifindex; __u32 hook; };
struct counters_value { __u64 c[5]; };

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __type(key, struct counters_key);
    __type(value, struct counters_value);
    __uint(max_entries, 20000);
} counters SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __type(key, __u64);
    __type(value, __u64);
    __uint(max_entries, 20000);
} rule_ctrs SEC(".maps");

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;

SEC("classifier")
int count_like_calico(struct __sk_buff *skb)
{
    struct counters_key key = { .ifindex = skb->ifindex, .hook = HOOK };
    struct counters_value *v = bpf_map_lookup_elem(&counters, &key);
    if (v) {
        v->c[0]++;
        v->c[4]++;
    }

    __u64 rule = RULE_ID;
    __u64 *hits = bpf_map_lookup_elem(&rule_ctrs, &rule);
    if (hits) {
        (*hits)++;
    }

#ifdef TAG
    char seen[] = TAG ": New packet at ifindex=%d; mark=%x";
    bpf_trace_printk(seen, sizeof(seen), skb->ifindex, skb->mark);
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    if (data + 34 <= end) {
        /* Ethernet (14 bytes), then the IPv4 header: source at 12, destination at 16. */
        char ip[] = TAG ": IP s=%pI4 d=%pI4";
        bpf_trace_printk(ip, sizeof(ip), data + 26, data + 30);
    }
    char deny[] = TAG ": DENY due to policy";
    bpf_trace_printk(deny, sizeof(deny));
#endif
    return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";

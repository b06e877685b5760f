/*
 * A tiny tc program for the tests: prints two lines in Calico's trace format for every packet
 * on its interface, then drops it (TC_ACT_SHOT), so the clsact qdisc counts a drop.
 * The tag is the test interface's name padded with '-' to 15 characters, as Calico pads it.
 * Self-contained (no kernel headers needed): the few UAPI values it uses are stable.
 * Build: clang -O2 -target bpf -c drop_and_trace.c -o drop_and_trace.o [-DTAG='"eth0------------I"']
 */
typedef unsigned int __u32;

/* The start of struct __sk_buff (include/uapi/linux/bpf.h). */
struct __sk_buff {
    __u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority, ingress_ifindex, ifindex;
};

#define SEC(name) __attribute__((section(name), used))
#define BPF_FUNC_trace_printk 6
#define TC_ACT_SHOT 2
#ifndef TAG
#define TAG "cbtveth0b-------I"
#endif

static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)BPF_FUNC_trace_printk;

SEC("classifier")
int drop_and_trace(struct __sk_buff *skb)
{
    char seen[] = TAG ": New packet at ifindex=%d; mark=%x";
    char verdict[] = TAG ": Final result=DENY (4). Program execution time: %dns";
    bpf_trace_printk(seen, sizeof(seen), skb->ifindex, skb->mark);
    bpf_trace_printk(verdict, sizeof(verdict), 1000 + skb->len);
    return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";

// SPDX-License-Identifier: (MIT OR Apache-2.0)
/* furui XDP jurisdiction classifier — stage 1 of the data path.
 *
 * Invariant kept here: a packet whose class is domestic, non_ip or malformed,
 * or whose class is not authorized right now, never reaches user space. Only
 * an authorized inbound/outbound/transit packet is redirected to the AF_XDP
 * socket of its RX queue; everything else is dropped (mirror mode) or passed
 * to the stack (inline mode). Every packet is counted by class and action.
 *
 * The reference model of this program is daemon/src/classify.rs; a
 * differential property test runs both on random packets and prefix sets.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "furui_consts.h"
#include "furui_structs.h"
#include "furui_maps.h"

const volatile struct furui_cfg cfg = {};

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* Header cursor (xdp-tools parsing_helpers style): every read is preceded by
 * a bounds check against data_end. */
struct cursor {
	void *pos;
	void *end;
};

static __always_inline int proto_is_vlan(__u16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD);
}

static __always_inline int is_domestic_v4(__u8 *addr)
{
	struct lpm_v4_key key = { .prefixlen = 32 };

	__builtin_memcpy(key.addr, addr, 4);
	return bpf_map_lookup_elem(&domestic_v4, &key) != NULL;
}

static __always_inline int is_domestic_v6(__u8 *addr)
{
	struct lpm_v6_key key = { .prefixlen = 128 };

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&domestic_v6, &key) != NULL;
}

static __always_inline __u32 class_of(int src_dom, int dst_dom)
{
	if (src_dom && dst_dom)
		return CLASS_DOMESTIC;
	if (dst_dom)
		return CLASS_INBOUND;
	if (src_dom)
		return CLASS_OUTBOUND;
	return CLASS_TRANSIT;
}

static __always_inline __u32 classify_v4(struct cursor *c)
{
	struct iphdr *ip = c->pos;
	__u32 hdr_len, tot_len;

	if ((void *)(ip + 1) > c->end)
		return CLASS_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return CLASS_MALFORMED;
	hdr_len = ip->ihl * 4;
	/* Variable-length header: check a second time with its real length. */
	if (c->pos + hdr_len > c->end)
		return CLASS_MALFORMED;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hdr_len || c->pos + tot_len > c->end)
		return CLASS_MALFORMED;
	return class_of(is_domestic_v4((__u8 *)&ip->saddr), is_domestic_v4((__u8 *)&ip->daddr));
}

static __always_inline __u32 classify_v6(struct cursor *c)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > c->end)
		return CLASS_MALFORMED;
	if (ip6->version != 6)
		return CLASS_MALFORMED;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > c->end)
		return CLASS_MALFORMED;
	return class_of(is_domestic_v6(ip6->saddr.in6_u.u6_addr8),
			is_domestic_v6(ip6->daddr.in6_u.u6_addr8));
}

static __always_inline __u32 classify(struct cursor *c)
{
	struct ethhdr *eth = c->pos;
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > c->end)
		return CLASS_MALFORMED;
	proto = eth->h_proto;
	c->pos = eth + 1;

#pragma unroll
	for (i = 0; i < VLAN_MAX_DEPTH; i++) {
		struct vlan_hdr *vh = c->pos;

		if (!proto_is_vlan(proto))
			break;
		if ((void *)(vh + 1) > c->end)
			return CLASS_MALFORMED;
		proto = vh->encap_proto;
		c->pos = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		return classify_v4(c);
	if (proto == bpf_htons(ETH_P_IPV6))
		return classify_v6(c);
	/* Includes a third VLAN tag: we do not look deeper, so it never goes up. */
	return CLASS_NON_IP;
}

static __always_inline void count(__u32 class, __u32 action, __u64 bytes)
{
	__u32 idx = class * NUM_ACTIONS + action;
	struct class_counter *ctr = bpf_map_lookup_elem(&class_stats, &idx);

	/* Per-CPU slot: no other CPU writes it, so no atomics are needed. */
	if (ctr) {
		ctr->packets++;
		ctr->bytes += bytes;
	}
}

SEC("xdp")
int furui_xdp(struct xdp_md *ctx)
{
	struct cursor c = {
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	/* A helper rather than end - pos: pointer subtraction needs
	 * CAP_PERFMON at load time, and the service runs without it. */
	__u64 bytes = bpf_xdp_get_buff_len(ctx);
	__u32 fallback = cfg.inline_mode ? XDP_PASS : XDP_DROP;
	__u32 fallback_action = cfg.inline_mode ? ACTION_PASS : ACTION_DROP;
	__u32 class = classify(&c);
	__u32 *authorized;
	__u32 queue;
	int ret;

	if (class != CLASS_INBOUND && class != CLASS_OUTBOUND && class != CLASS_TRANSIT)
		goto not_captured;
	authorized = bpf_map_lookup_elem(&class_authorized, &class);
	if (!authorized || *authorized != 1)
		goto not_captured;

	queue = ctx->rx_queue_index;
	ret = bpf_redirect_map(&xsks, queue, fallback);
	count(class, ret == XDP_REDIRECT ? ACTION_REDIRECT : ACTION_NO_SOCKET, bytes);
	return ret;

not_captured:
	count(class, fallback_action, bytes);
	return fallback;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

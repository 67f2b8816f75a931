// SPDX-License-Identifier: (MIT OR Apache-2.0)
/* furui XDP jurisdiction classifier — stage 1 of the data path.
 *
 * The class is decided by the INNERMOST IP header: the walk in furui_walk.h
 * opens the configured encapsulations (MPLS, GRE/ERSPAN, VXLAN, Geneve,
 * GTP-U, IP-in-IP), bounded in depth.
 *
 * Invariant kept here: a packet whose class is domestic, non_ip, malformed,
 * undecided (an encapsulation not opened) or too_deep, or whose class is not
 * authorized right now, never reaches user space. Only
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
#include "furui_walk.h"

const volatile struct furui_cfg cfg = {};

static __always_inline int is_domestic_v4(__u8 *addr)
{
	struct lpm_v4_key key = { .prefixlen = 32 };

	/* Word loads (a byte-wise copy is four times the instructions). */
	*(__u32 *)key.addr = *(__u32 *)addr;
	return bpf_map_lookup_elem(&domestic_v4, &key) != NULL;
}

static __always_inline int is_domestic_v6(__u8 *addr)
{
	struct lpm_v6_key key = { .prefixlen = 128 };
	__u32 *k = (__u32 *)key.addr, *a = (__u32 *)addr;

	k[0] = a[0];
	k[1] = a[1];
	k[2] = a[2];
	k[3] = a[3];
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

/* The class from the addresses of the IP header the walk ended on (the
 * step that set ip_off already checked the whole header is there). */
static __always_inline __u32 class_by_address(struct xdp_md *ctx, struct walk *w)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 off = w->ip_off;
	__u8 *ip;

	if (off > WALK_MAX_OFFSET)
		return CLASS_TOO_DEEP;
	ip = data + off;
	if (w->ip_ver == 4) {
		if ((void *)(ip + 20) > end)
			return CLASS_MALFORMED;
		return class_of(is_domestic_v4(ip + 12), is_domestic_v4(ip + 16));
	}
	if ((void *)(ip + 40) > end)
		return CLASS_MALFORMED;
	return class_of(is_domestic_v6(ip + 8), is_domestic_v6(ip + 24));
}

static __always_inline void count_encaps(struct walk *w)
{
	__u32 chain = w->chain;
	__u64 *ctr;
	__u32 idx;
	int i;

	/* Per-CPU slots: no other CPU writes them, so no atomics. */
#pragma unroll
	for (i = 0; i < ENCAP_MAX_LAYERS; i++) {
		if (!(chain & 0xf))
			break;
		idx = ((chain & 0xf) - 1) * NUM_OUTCOMES + OUTCOME_OPENED;
		ctr = bpf_map_lookup_elem(&encap_stats, &idx);
		if (ctr)
			(*ctr)++;
		chain >>= 4;
	}
	if (w->stop_encap) {
		idx = (w->stop_encap - 1) * NUM_OUTCOMES + w->stop_outcome;
		ctr = bpf_map_lookup_elem(&encap_stats, &idx);
		if (ctr)
			(*ctr)++;
	}
}

static __always_inline int is_tunnel_port(struct furui_decap *cfg, __u16 port)
{
	return port == cfg->vxlan_port || port == cfg->geneve_port || port == cfg->gtpu_port ||
	       port == cfg->mpls_udp_port;
}

/* The plain frame, inline: Ethernet with at most two VLAN tags, then one
 * IPv4 header without options or one IPv6 header without extension
 * headers, not a fragment, whose upper layer cannot carry a tunnel (not IP
 * protocol 4, 41 or 47, not UDP to a tunnel port). Such a frame gets the
 * class the walk would give it, without the walk. Returns 0 for anything
 * else (malformed, truncated, encapsulated, fragmented, ...): the walk
 * then decides, with all its checks. */
static __always_inline int fast_path(struct xdp_md *ctx, struct furui_decap *cfg, struct walk *w, __u32 *class)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u8 *ip;
	__u16 proto;
	__u32 len;

	if ((void *)(p + 14) > end)
		return 0;
	proto = rd16(p + 12);
	ip = p + 14;
	if (proto == ETHERTYPE_VLAN || proto == ETHERTYPE_QINQ) {
		if ((void *)(p + 18) > end)
			return 0;
		proto = rd16(p + 16);
		ip = p + 18;
		if (proto == ETHERTYPE_VLAN || proto == ETHERTYPE_QINQ) {
			if ((void *)(p + 22) > end)
				return 0;
			proto = rd16(p + 20);
			ip = p + 22;
		}
	}
	if (proto == ETHERTYPE_IPV4) {
		if ((void *)(ip + 28) > end || ip[0] != 0x45)
			return 0;
		len = rd16(ip + 2);
		/* The whole packet in the linear part, not a fragment. */
		if (len < 28 || (void *)(ip + len) > end || (rd16(ip + 6) & 0x3fff))
			return 0;
		if (ip[9] == 4 || ip[9] == 41 || ip[9] == 47)
			return 0;
		if (ip[9] == 17 && is_tunnel_port(cfg, rd16(ip + 22)))
			return 0;
		w->ip_off = ip - p;
		w->ip_ver = 4;
		w->l4_off = w->ip_off + 20;
		w->upper = ip[9];
		*class = class_of(is_domestic_v4(ip + 12), is_domestic_v4(ip + 16));
		return 1;
	}
	if (proto == ETHERTYPE_IPV6) {
		if ((void *)(ip + 48) > end || (ip[0] >> 4) != 6)
			return 0;
		len = rd16(ip + 4);
		if (len < 8 || (void *)(ip + 40 + len) > end)
			return 0;
		switch (ip[6]) {
		case 0: case 43: case 60: case 44: case 51: case 4: case 41: case 47:
			return 0;
		case 17:
			if (is_tunnel_port(cfg, rd16(ip + 42)))
				return 0;
		}
		w->ip_off = ip - p;
		w->ip_ver = 6;
		w->l4_off = w->ip_off + 40;
		w->upper = ip[6];
		*class = class_of(is_domestic_v6(ip + 8), is_domestic_v6(ip + 24));
		return 1;
	}
	return 0;
}

/* Walks the frame to its innermost IP header and classifies it. */
static __always_inline __u32 classify(struct xdp_md *ctx, struct walk *w)
{
	__u32 zero = 0, class;
	struct furui_decap *cfg = bpf_map_lookup_elem(&decap_cfg, &zero);
	int i;

	/* Unwritten settings (the daemon always writes max_layers >= 1): the
	 * walk cannot know which UDP ports carry tunnels, so no frame can be
	 * judged; none is captured. */
	if (!cfg || cfg->max_layers == 0)
		return CLASS_UNDECIDED;
	if (fast_path(ctx, cfg, w, &class))
		return class;
	/* Only the walk needs the rest of its state (zeroing all of it for
	 * every plain frame was a measurable part of the fast path's cost). */
	__builtin_memset(w, 0, sizeof(*w));
	w->cfg = *cfg;
	w->lim = bpf_xdp_get_buff_len(ctx);
	w->next = W_ETH;
	for (i = 0; i < WALK_MAX_STEPS; i++) {
		switch (w->next) {
		case W_ETH:
			step_eth(ctx, w);
			break;
		case W_MPLS:
			step_mpls(ctx, w);
			break;
		case W_IPV4:
			step_ipv4(ctx, w);
			break;
		case W_IPV6:
			step_ipv6(ctx, w);
			break;
		case W_GRE:
			step_gre(ctx, w);
			break;
		case W_UDP:
			step_udp(ctx, w);
			break;
		default:
			break;
		}
		if (w->next == W_DONE)
			break;
	}
	if (w->next != W_DONE)
		w->result = CLASS_TOO_DEEP;
	count_encaps(w);
	if (w->result == RESULT_BY_ADDRESS)
		return class_by_address(ctx, w);
	return w->result < NUM_CLASSES ? w->result : CLASS_MALFORMED;
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

/* The hello_flows key of the TCP segment at `l4` (inside the frame): its
 * innermost addresses and ports. 0 if the headers are not all there. */
static __always_inline int hello_key_of(struct xdp_md *ctx, struct walk *w, __u8 *l4, struct hello_key *key)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 off = w->ip_off;
	__u8 *ip;

	if (off > WALK_MAX_OFFSET || (void *)(l4 + 4) > end)
		return 0;
	asm volatile("" : "+r"(off));
	ip = data + (off & (2 * WALK_MAX_OFFSET - 1));
	if (w->ip_ver == 4) {
		if ((void *)(ip + 20) > end)
			return 0;
		key->src[10] = 0xff;
		key->src[11] = 0xff;
		key->dst[10] = 0xff;
		key->dst[11] = 0xff;
		*(__u32 *)(key->src + 12) = *(__u32 *)(ip + 12);
		*(__u32 *)(key->dst + 12) = *(__u32 *)(ip + 16);
	} else {
		if ((void *)(ip + 40) > end)
			return 0;
		__builtin_memcpy(key->src, ip + 8, 16);
		__builtin_memcpy(key->dst, ip + 24, 16);
	}
	key->sport = *(__u16 *)l4;
	key->dport = *(__u16 *)(l4 + 2);
	return 1;
}

static __always_inline void count_snap(__u32 idx)
{
	__u64 *ctr = bpf_map_lookup_elem(&snap_stats, &idx);

	if (ctr)
		(*ctr)++;
}

/* Whether a TCP segment (header at `t`, `hl` bytes; `plen` payload bytes)
 * is one fingerprinting needs whole: it starts a TLS handshake record (one
 * longer than the segment makes its flow followed), or its flow is
 * followed (the bytes it carries are taken off what is still to come). */
static __always_inline int tls_hello_segment(struct xdp_md *ctx, struct walk *w, __u8 *t, __u8 *pl, __u32 plen)
{
	void *end = (void *)(long)ctx->data_end;
	struct hello_key key = {};
	__u32 need, *left;

	if (!hello_key_of(ctx, w, t, &key))
		return 0;
	if ((void *)(pl + 5) <= end && pl[0] == 0x16 && pl[1] == 0x03) {
		need = 5 + (__u32)rd16(pl + 3);
		if (need > plen) {
			need -= plen;
			if (!bpf_map_update_elem(&hello_flows, &key, &need, BPF_ANY))
				count_snap(SNAP_STAT_FOLLOWED);
		}
		return 1;
	}
	left = bpf_map_lookup_elem(&hello_flows, &key);
	if (!left)
		return 0;
	if (*left <= plen) {
		bpf_map_delete_elem(&hello_flows, &key);
		count_snap(SNAP_STAT_FOLLOW_DONE);
	} else {
		*left -= plen;
	}
	return 1;
}

/* Largest SSH KEXINIT packet HASSH follows (select/ssh.rs MAX_KEXINIT). */
#define SSH_MAX_KEXINIT 16384

/* A TCP segment HASSH reads: it starts with an SSH identification line
 * ("SSH-") or with a binary packet carrying SSH_MSG_KEXINIT (20) of a
 * plausible length and padding. Stateless: a KEXINIT split over segments
 * keeps its first segment only (user space then gives that side up). */
static __always_inline int ssh_segment(__u8 *pl, void *end)
{
	__u32 n;

	if ((void *)(pl + 6) > end)
		return 0;
	if (pl[0] == 'S' && pl[1] == 'S' && pl[2] == 'H' && pl[3] == '-')
		return 1;
	n = rd32(pl);
	return pl[5] == 20 && pl[4] >= 4 && n >= 5 && n <= SSH_MAX_KEXINIT;
}

/* A QUIC long-header Initial of version 1 (RFC 9000) or 2 (RFC 9369),
 * whose CRYPTO frames carry the ClientHello. */
static __always_inline int quic_initial(__u8 *q)
{
	__u32 version;

	if ((q[0] & 0xc0) != 0xc0)
		return 0;
	version = rd32(q + 1);
	if (version == 1)
		return ((q[0] >> 4) & 3) == 0;
	if (version == 0x6b3343cf)
		return ((q[0] >> 4) & 3) == 1;
	return 0;
}

/* How many bytes of a captured frame of `len` bytes to keep: the headers
 * up to and including the innermost transport header, plus the snap's
 * payload bytes; the whole frame when the snap says so, when the transport
 * header is not known (a later fragment, an outer-classified tunnel), or
 * when fingerprinting needs it (SNAP_KEEP_HELLOS). */
static __always_inline __u64 snap_len(struct xdp_md *ctx, struct walk *w, __u64 len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct furui_snap *s;
	__u32 zero = 0, l4 = w->l4_off, hl, payload;
	__u8 *t, *pl;
	__u64 keep;

	s = bpf_map_lookup_elem(&snap_cfg, &zero);
	if (!s)
		return len;
	payload = s->payload;
	if (payload == SNAP_WHOLE || l4 == 0 || l4 > WALK_MAX_OFFSET)
		return len;
	/* The compiler folds the two tests above into one range check the
	 * verifier cannot follow: hide l4 from it, then bound it by a mask. */
	asm volatile("" : "+r"(l4));
	t = data + (l4 & (2 * WALK_MAX_OFFSET - 1));
	if (w->upper == 6) {
		if ((void *)(t + 20) > end)
			return len;
		hl = (t[12] >> 4) * 4;
		if (hl < 20)
			return len;
		pl = t + hl;
		if (s->flags & SNAP_KEEP_HELLOS) {
			__u64 head = (__u64)l4 + hl;

			if (tls_hello_segment(ctx, w, t, pl, len > head ? len - head : 0))
				return len;
			if (ssh_segment(pl, end))
				return len;
		}
	} else if (w->upper == 17) {
		hl = 8;
		pl = t + 8;
		if ((s->flags & SNAP_KEEP_HELLOS) && (void *)(pl + 5) <= end && quic_initial(pl))
			return len;
	} else if (w->upper == 1 || w->upper == 58) {
		/* ICMP: type, code, checksum and the rest of the header. */
		hl = 8;
		payload = 0;
	} else {
		hl = 0;
		payload = 0;
	}
	keep = (__u64)l4 + hl + payload;
	return keep < len ? keep : len;
}

/* The metadata of a captured frame (struct furui_meta). If the driver has
 * no room for it, user space finds no magic and walks the frame itself.
 * Returns whether it was written. */
static __always_inline int write_meta(struct xdp_md *ctx, struct walk *w, __u32 class, __u64 len)
{
	struct furui_meta *m;
	void *data;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct furui_meta)))
		return 0;
	data = (void *)(long)ctx->data;
	m = (void *)(long)ctx->data_meta;
	if ((void *)(m + 1) > data)
		return 0;
	m->magic = FURUI_META_MAGIC;
	m->ip_off = w->ip_off;
	m->ip_ver = w->ip_ver;
	m->class = class;
	m->chain = w->chain;
	m->tunnel_encap = w->tunnel_encap;
	m->pad = 0;
	m->tunnel_id = w->tunnel_id;
	m->orig_len = len;
	return 1;
}

SEC("xdp")
int furui_xdp(struct xdp_md *ctx)
{
	/* A helper rather than end - pos: pointer subtraction needs
	 * CAP_PERFMON at load time, and the service runs without it. */
	__u64 bytes = bpf_xdp_get_buff_len(ctx);
	__u32 fallback = cfg.inline_mode ? XDP_PASS : XDP_DROP;
	__u32 fallback_action = cfg.inline_mode ? ACTION_PASS : ACTION_DROP;
	struct walk w;
	__u32 *authorized;
	__u32 class, queue;
	__u64 keep;
	int ret;

	/* What write_meta reads, for the fast path; the walk zeroes all. */
	w.ip_off = 0;
	w.ip_ver = 0;
	w.chain = 0;
	w.tunnel_id = 0;
	w.tunnel_encap = 0;
	w.l4_off = 0;
	w.upper = 0;
	class = classify(ctx, &w);

	if (class != CLASS_INBOUND && class != CLASS_OUTBOUND && class != CLASS_TRANSIT)
		goto not_captured;
	authorized = bpf_map_lookup_elem(&class_authorized, &class);
	if (!authorized || *authorized != 1)
		goto not_captured;

	queue = ctx->rx_queue_index;
	/* Only what selection can use reaches user space, and only with the
	 * metadata that carries the original length (byte counts and size
	 * rules stay exact; a frame without it, on a driver with no room for
	 * it, goes whole). Inline, a frame with no socket to go to passes to
	 * the stack: it is left whole. */
	if (write_meta(ctx, &w, class, bytes) && (!cfg.inline_mode || bpf_map_lookup_elem(&xsks, &queue))) {
		keep = snap_len(ctx, &w, bytes);
		if (keep < bytes)
			bpf_xdp_adjust_tail(ctx, -(int)(bytes - keep));
	}
	ret = bpf_redirect_map(&xsks, queue, fallback);
	count(class, ret == XDP_REDIRECT ? ACTION_REDIRECT : ACTION_NO_SOCKET, bytes);
	return ret;

not_captured:
	count(class, fallback_action, bytes);
	return fallback;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

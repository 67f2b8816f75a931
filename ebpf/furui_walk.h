/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/* The bounded header walk of the XDP classifier: Ethernet/VLAN, MPLS, IP,
 * and the opened encapsulations, down to the innermost IP header — the one
 * whose addresses decide the jurisdiction class.
 *
 * One step is one global (non-inlined) function per header kind: the
 * verifier checks each of them once, with the walk state as plain memory,
 * instead of every path through every nesting. The walk state holds
 * offsets, never packet pointers; every step re-derives its pointer from
 * ctx->data and bounds-checks it against data_end before each read.
 *
 * Fail-safe rules (each has its class, and the encapsulation's outcome is
 * counted in encap_stats):
 *   - a recognized encapsulation that is not opened: CLASS_UNDECIDED,
 *     unless the operator marked it for outer classification;
 *   - one layer more than max_layers, a label stack deeper than
 *     mpls_max_labels, more IPv6 extension headers than IPV6_EXT_MAX, or a
 *     header beyond WALK_MAX_OFFSET: CLASS_TOO_DEEP;
 *   - a truncated or invalid header at any layer: CLASS_MALFORMED.
 * None of these classes is ever redirected.
 *
 * The reference model of this walk is daemon/src/classify/walk.rs: the same
 * checks in the same order (a differential property test compares them).
 */
#ifndef FURUI_WALK_H
#define FURUI_WALK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "furui_consts.h"
#include "furui_structs.h"

/* What the next step parses. */
#define W_DONE 0
#define W_ETH 1
#define W_MPLS 2
#define W_IPV4 3
#define W_IPV6 4
#define W_GRE 5
#define W_UDP 6

/* walk.result when the class follows from the IP header at ip_off. */
#define RESULT_BY_ADDRESS 0xff

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define ETHERTYPE_MPLS 0x8847
#define ETHERTYPE_MPLS_MC 0x8848
#define ETHERTYPE_TEB 0x6558
#define ETHERTYPE_ERSPAN_2 0x88be
#define ETHERTYPE_ERSPAN_3 0x22eb

#define GRE_C 0x8000
#define GRE_R 0x4000
#define GRE_K 0x2000
#define GRE_S 0x1000
/* RFC 2784: strict source route and recursion bits (with R) must be zero. */
#define GRE_MUST_BE_ZERO (GRE_R | 0x0800 | 0x0700)
#define GRE_VERSION 0x0007

struct walk {
	__u32 next;     /* W_* */
	__u32 off;      /* where the next step reads */
	__u32 lim;      /* end of the innermost IP packet seen so far */
	__u32 l4proto;  /* for W_GRE / W_UDP: the enclosing IP's protocol */
	__u32 pending;  /* for W_MPLS: the encapsulation the stack belongs to */
	__u32 ip_off;   /* the innermost IP header seen so far */
	__u32 ip_ver;   /* 0 before any IP header */
	__u32 depth;    /* encapsulation layers opened */
	__u32 chain;    /* opened layers, 4 bits each (ENCAP_* + 1), outermost lowest */
	__u32 tunnel_id;
	__u32 tunnel_encap; /* ENCAP_* + 1 of tunnel_id's layer, 0 = none */
	__u32 result;   /* CLASS_* or RESULT_BY_ADDRESS, once next == W_DONE */
	__u32 stop_encap;   /* ENCAP_* + 1 of the layer the walk stopped at, or 0 */
	__u32 stop_outcome; /* OUTCOME_* for stop_encap */
	__u32 l4_off;   /* the innermost transport header; 0 = none or unknown */
	__u32 upper;    /* its IP protocol */
	struct furui_decap cfg;
};

/* Big-endian fields read with one load each (assembling them byte by byte
 * cost the plain path a few ns). Packet reads need no alignment on the
 * architectures furui runs on (the verifier checks it only under strict
 * alignment, i.e. where unaligned access is slow or absent). */
static __always_inline __u16 rd16(__u8 *p)
{
	return bpf_ntohs(*(__be16 *)p);
}

static __always_inline __u32 rd32(__u8 *p)
{
	return bpf_ntohl(*(__be32 *)p);
}

static __always_inline int done(struct walk *w, __u32 result)
{
	w->result = result;
	w->next = W_DONE;
	return 0;
}

static __always_inline int stop(struct walk *w, __u32 result, __u32 encap, __u32 outcome)
{
	w->stop_encap = encap + 1;
	w->stop_outcome = outcome;
	return done(w, result);
}

/* Whether the walk may open `encap` here. If not, it finishes the walk:
 * outer classification where configured (and there is an outer IP
 * header), undecided otherwise, or too deep. */
static __always_inline int may_open(struct walk *w, __u32 encap)
{
	__u32 bit = 1u << encap;

	if (!(w->cfg.open & bit)) {
		if ((w->cfg.outer & bit) && w->ip_ver)
			stop(w, RESULT_BY_ADDRESS, encap, OUTCOME_OUTER);
		else
			stop(w, CLASS_UNDECIDED, encap, OUTCOME_NOT_OPENED);
		return 0;
	}
	if (w->depth >= w->cfg.max_layers || w->depth >= ENCAP_MAX_LAYERS) {
		stop(w, CLASS_TOO_DEEP, encap, OUTCOME_TOO_DEEP);
		return 0;
	}
	return 1;
}

/* Records an opened layer; the innermost tunnel id wins. */
static __always_inline void opened(struct walk *w, __u32 encap, __u32 id, int has_id)
{
	if (w->depth < 8)
		w->chain |= (encap + 1) << (4 * w->depth);
	w->depth++;
	if (has_id) {
		w->tunnel_id = id;
		w->tunnel_encap = encap + 1;
	}
}

/* Where a step reads: the frame's start + off, bounded for the verifier. */
#define STEP_PROLOGUE()                                                   \
	void *data = (void *)(long)ctx->data;                             \
	void *end = (void *)(long)ctx->data_end;                          \
	__u32 off;                                                        \
	__u8 *p;                                                          \
	if (!w)                                                           \
		return 0;                                                 \
	off = w->off;                                                     \
	if (off > WALK_MAX_OFFSET)                                        \
		return done(w, CLASS_TOO_DEEP);                           \
	p = data + off;

/* True when n bytes at p are inside both the frame and the IP packet. */
#define HAVE(p, at, n) ((void *)(p) + (n) <= end && (at) + (n) <= w->lim)

/* Ethernet, then up to VLAN_MAX_DEPTH tags. */
__noinline int step_eth(struct xdp_md *ctx, struct walk *w)
{
	__u16 proto;
	int i;

	STEP_PROLOGUE();
	if (!HAVE(p, off, 14))
		return done(w, CLASS_MALFORMED);
	proto = rd16(p + 12);
	off += 14;
	p += 14;
#pragma unroll
	for (i = 0; i < VLAN_MAX_DEPTH; i++) {
		if (proto != ETHERTYPE_VLAN && proto != ETHERTYPE_QINQ)
			break;
		if (!HAVE(p, off, 4))
			return done(w, CLASS_MALFORMED);
		proto = rd16(p + 2);
		off += 4;
		p += 4;
	}
	w->off = off;
	if (proto == ETHERTYPE_IPV4) {
		w->next = W_IPV4;
		return 0;
	}
	if (proto == ETHERTYPE_IPV6) {
		w->next = W_IPV6;
		return 0;
	}
	if (proto == ETHERTYPE_MPLS || proto == ETHERTYPE_MPLS_MC) {
		if (!may_open(w, ENCAP_MPLS))
			return 0;
		w->pending = ENCAP_MPLS;
		w->next = W_MPLS;
		return 0;
	}
	/* ARP, LLDP, a third VLAN tag, ...: nothing we look into. */
	return done(w, CLASS_NON_IP);
}

/* An MPLS label stack, then what its bottom label carries. */
__noinline int step_mpls(struct xdp_md *ctx, struct walk *w)
{
	__u32 encap, label = 0;
	__u8 nibble;
	int i, bos = 0;

	STEP_PROLOGUE();
	encap = w->pending == ENCAP_MPLS_UDP ? ENCAP_MPLS_UDP : ENCAP_MPLS;
	for (i = 0; i < MPLS_MAX_LABELS; i++) {
		if (i >= w->cfg.mpls_max_labels)
			break;
		if (!HAVE(p, off, 4))
			return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
		label = rd32(p) >> 12;
		bos = p[2] & 1;
		off += 4;
		p += 4;
		if (bos)
			break;
	}
	if (!bos)
		return stop(w, CLASS_TOO_DEEP, encap, OUTCOME_TOO_DEEP);
	if (!HAVE(p, off, 1))
		return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
	nibble = p[0] >> 4;
	if (w->cfg.mpls_pw == MPLS_PW_ETH) {
		w->next = W_ETH;
	} else if (nibble == 4) {
		w->next = W_IPV4;
	} else if (nibble == 6) {
		w->next = W_IPV6;
	} else if (nibble == 0 && w->cfg.mpls_pw == MPLS_PW_ETH_CW) {
		/* RFC 4385 control word: 4 bytes, then the Ethernet frame. */
		if (!HAVE(p, off, 4))
			return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
		off += 4;
		w->next = W_ETH;
	} else {
		/* A pseudowire or a payload this config does not decode. */
		return stop(w, CLASS_UNDECIDED, encap, OUTCOME_NOT_OPENED);
	}
	opened(w, encap, label, 1);
	w->off = off;
	return 0;
}

/* The upper layer of an IP header: a tunnel, or the end of the walk.
 * `later_fragment`: this packet is a non-first fragment (no L4 header). */
static __always_inline int after_ip(struct walk *w, __u32 proto, __u32 l4, int later_fragment)
{
	if (proto == 4 || proto == 41) {
		if (!may_open(w, ENCAP_IPIP))
			return 0;
		if (later_fragment)
			return stop(w, CLASS_UNDECIDED, ENCAP_IPIP, OUTCOME_NOT_OPENED);
		opened(w, ENCAP_IPIP, 0, 0);
		w->off = l4;
		w->next = proto == 4 ? W_IPV4 : W_IPV6;
		return 0;
	}
	if (proto == 47) {
		/* A later fragment of GRE: the GRE header (and so whether it is
		 * ERSPAN) is in another fragment. */
		if (later_fragment) {
			if (!may_open(w, ENCAP_GRE))
				return 0;
			return stop(w, CLASS_UNDECIDED, ENCAP_GRE, OUTCOME_NOT_OPENED);
		}
		w->off = l4;
		w->next = W_GRE;
		return 0;
	}
	if (proto == 17) {
		/* A later UDP fragment has no port: whether it carries a tunnel
		 * (and whose traffic is inside) is said in another fragment. */
		if (later_fragment)
			return done(w, CLASS_UNDECIDED);
		w->off = l4;
		w->next = W_UDP;
		return 0;
	}
	/* A later fragment carries no transport header. */
	if (!later_fragment) {
		w->l4_off = l4;
		w->upper = proto;
	}
	return done(w, RESULT_BY_ADDRESS);
}

__noinline int step_ipv4(struct xdp_md *ctx, struct walk *w)
{
	__u32 hdr_len, tot_len, frag;

	STEP_PROLOGUE();
	if (!HAVE(p, off, 20))
		return done(w, CLASS_MALFORMED);
	if ((p[0] >> 4) != 4 || (p[0] & 0x0f) < 5)
		return done(w, CLASS_MALFORMED);
	hdr_len = (p[0] & 0x0f) * 4;
	tot_len = rd16(p + 2);
	if (off + hdr_len > w->lim || tot_len < hdr_len || off + tot_len > w->lim)
		return done(w, CLASS_MALFORMED);
	w->ip_off = off;
	w->ip_ver = 4;
	w->lim = off + tot_len;
	frag = rd16(p + 6) & 0x1fff;
	return after_ip(w, p[9], off + hdr_len, frag != 0);
}

__noinline int step_ipv6(struct xdp_md *ctx, struct walk *w)
{
	__u32 pos, nh, len;
	int i, later_fragment = 0;

	STEP_PROLOGUE();
	if (!HAVE(p, off, 40))
		return done(w, CLASS_MALFORMED);
	if ((p[0] >> 4) != 6)
		return done(w, CLASS_MALFORMED);
	len = rd16(p + 4);
	if (off + 40 + len > w->lim)
		return done(w, CLASS_MALFORMED);
	w->ip_off = off;
	w->ip_ver = 6;
	w->lim = off + 40 + len;
	nh = p[6];
	pos = off + 40;
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		__u8 *e;

		if (nh != 0 && nh != 43 && nh != 60 && nh != 44 && nh != 51)
			break;
		if (pos > WALK_MAX_OFFSET)
			return done(w, CLASS_TOO_DEEP);
		e = data + pos;
		if (!HAVE(e, pos, 8))
			return done(w, CLASS_MALFORMED);
		if (nh == 44) {
			later_fragment = (rd16(e + 2) & 0xfff8) != 0;
			nh = e[0];
			pos += 8;
			/* Nothing follows a later fragment's header but data. */
			if (later_fragment)
				break;
		} else if (nh == 51) {
			nh = e[0];
			pos += ((__u32)e[1] + 2) * 4;
		} else {
			nh = e[0];
			pos += ((__u32)e[1] + 1) * 8;
		}
	}
	if (!later_fragment && (nh == 0 || nh == 43 || nh == 60 || nh == 44 || nh == 51))
		return done(w, CLASS_TOO_DEEP);
	return after_ip(w, nh, pos, later_fragment);
}

/* GRE (RFC 2784/2890), and ERSPAN over it. */
__noinline int step_gre(struct xdp_md *ctx, struct walk *w)
{
	__u32 encap, hl, key = 0;
	__u16 flags, proto;
	__u8 *e;

	STEP_PROLOGUE();
	if (!HAVE(p, off, 4))
		return stop(w, CLASS_MALFORMED, ENCAP_GRE, OUTCOME_MALFORMED);
	flags = rd16(p);
	proto = rd16(p + 2);
	encap = (proto == ETHERTYPE_ERSPAN_2 || proto == ETHERTYPE_ERSPAN_3) ? ENCAP_ERSPAN : ENCAP_GRE;
	if (!may_open(w, encap))
		return 0;
	if (flags & GRE_MUST_BE_ZERO)
		return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
	/* Version 1 is PPTP's enhanced GRE: not a mirror or overlay feed. */
	if (flags & GRE_VERSION)
		return stop(w, CLASS_UNDECIDED, encap, OUTCOME_NOT_OPENED);
	hl = 4;
	if (flags & GRE_C)
		hl += 4;
	if (flags & GRE_K) {
		__u8 *k = p + hl;

		if (!HAVE(k, off + hl, 4))
			return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
		key = rd32(k);
		hl += 4;
	}
	if (flags & GRE_S)
		hl += 4;
	if (!HAVE(p, off, hl))
		return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
	off += hl;
	e = p + hl;
	if (proto == ETHERTYPE_IPV4 || proto == ETHERTYPE_IPV6 || proto == ETHERTYPE_TEB) {
		opened(w, ENCAP_GRE, key, flags & GRE_K);
		w->next = proto == ETHERTYPE_IPV4 ? W_IPV4 : proto == ETHERTYPE_IPV6 ? W_IPV6 : W_ETH;
		w->off = off;
		return 0;
	}
	if (proto == ETHERTYPE_MPLS || proto == ETHERTYPE_MPLS_MC) {
		/* MPLS over GRE (RFC 4023): GRE is a layer, the stack another. */
		opened(w, ENCAP_GRE, key, flags & GRE_K);
		if (!may_open(w, ENCAP_MPLS))
			return 0;
		w->pending = ENCAP_MPLS;
		w->next = W_MPLS;
		w->off = off;
		return 0;
	}
	if (proto == ETHERTYPE_ERSPAN_2) {
		__u32 session = 0;

		/* Type II has a sequence number and an 8-byte header; type I
		 * has neither: the mirrored frame follows GRE directly. */
		if (flags & GRE_S) {
			if (!HAVE(e, off, 8))
				return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
			if ((e[0] >> 4) != 1)
				return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
			session = rd16(e + 2) & 0x3ff;
			off += 8;
		}
		/* Type I carries no session id. */
		opened(w, ENCAP_ERSPAN, session, flags & GRE_S);
		w->next = W_ETH;
		w->off = off;
		return 0;
	}
	if (proto == ETHERTYPE_ERSPAN_3) {
		__u32 session;

		if (!HAVE(e, off, 12))
			return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
		if ((e[0] >> 4) != 2)
			return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
		/* Frame type 0 is Ethernet; 2 (IP) and others are not decoded. */
		if (((e[10] >> 2) & 0x1f) != 0)
			return stop(w, CLASS_UNDECIDED, encap, OUTCOME_NOT_OPENED);
		session = rd16(e + 2) & 0x3ff;
		off += 12;
		/* O flag: an 8-byte platform-specific sub-header follows. */
		if (e[11] & 1) {
			if (!HAVE(e + 12, off, 8))
				return stop(w, CLASS_MALFORMED, encap, OUTCOME_MALFORMED);
			off += 8;
		}
		opened(w, ENCAP_ERSPAN, session, 1);
		w->next = W_ETH;
		w->off = off;
		return 0;
	}
	/* PPP, NSH, keepalives, ...: GRE we do not decode. */
	return stop(w, CLASS_UNDECIDED, encap, OUTCOME_NOT_OPENED);
}

/* GTP-U (TS 29.281): returns the header length, 0 if malformed, or -1 if
 * its extension headers go deeper than GTPU_EXT_MAX. */
static __always_inline int gtpu_header_len(void *end, struct walk *w, __u8 *g, __u32 at)
{
	__u32 hl = 8;
	__u8 next;
	int i;

	if (!HAVE(g, at, 8))
		return 0;
	/* Version 1, protocol type 1 (GTP, not GTP'). */
	if ((g[0] >> 5) != 1 || !(g[0] & 0x10))
		return 0;
	if (!(g[0] & 0x07))
		return hl;
	if (!HAVE(g, at, 12))
		return 0;
	next = g[11];
	hl = 12;
	/* The next-extension field is interpreted only when E is set. */
	if (!(g[0] & 0x04))
		return hl;
	for (i = 0; i < GTPU_EXT_MAX; i++) {
		__u32 len;
		__u8 *x, *last;

		if (next == 0)
			return hl;
		if (hl > 64)
			return -1;
		x = g + hl;
		if (!HAVE(x, at + hl, 1))
			return 0;
		len = (__u32)x[0] * 4;
		if (len == 0)
			return 0;
		if (len > 64)
			return 0;
		/* The next-extension type is the extension's last byte. */
		last = x + (len - 1);
		if (!HAVE(last, at + hl + len - 1, 1))
			return 0;
		next = last[0];
		hl += len;
	}
	return next == 0 ? (int)hl : -1;
}

/* UDP, and the tunnels recognized by their destination port. */
__noinline int step_udp(struct xdp_md *ctx, struct walk *w)
{
	__u16 dport;
	__u8 *t;

	STEP_PROLOGUE();
	/* Without a whole UDP header the port is unknown: it may be a tunnel. */
	if (!HAVE(p, off, 8))
		return done(w, CLASS_MALFORMED);
	dport = rd16(p + 2);
	off += 8;
	t = p + 8;
	if (dport == w->cfg.vxlan_port) {
		if (!may_open(w, ENCAP_VXLAN))
			return 0;
		/* RFC 7348: the I flag must be set for the VNI to be valid. */
		if (!HAVE(t, off, 8) || !(t[0] & 0x08))
			return stop(w, CLASS_MALFORMED, ENCAP_VXLAN, OUTCOME_MALFORMED);
		opened(w, ENCAP_VXLAN, rd32(t + 4) >> 8, 1);
		w->off = off + 8;
		w->next = W_ETH;
		return 0;
	}
	if (dport == w->cfg.geneve_port) {
		__u32 optlen;
		__u16 proto;

		if (!may_open(w, ENCAP_GENEVE))
			return 0;
		if (!HAVE(t, off, 8) || (t[0] >> 6) != 0)
			return stop(w, CLASS_MALFORMED, ENCAP_GENEVE, OUTCOME_MALFORMED);
		optlen = (t[0] & 0x3f) * 4;
		if (!HAVE(t, off, 8 + optlen))
			return stop(w, CLASS_MALFORMED, ENCAP_GENEVE, OUTCOME_MALFORMED);
		proto = rd16(t + 2);
		if (proto == ETHERTYPE_TEB)
			w->next = W_ETH;
		else if (proto == ETHERTYPE_IPV4)
			w->next = W_IPV4;
		else if (proto == ETHERTYPE_IPV6)
			w->next = W_IPV6;
		else
			return stop(w, CLASS_UNDECIDED, ENCAP_GENEVE, OUTCOME_NOT_OPENED);
		opened(w, ENCAP_GENEVE, rd32(t + 4) >> 8, 1);
		w->off = off + 8 + optlen;
		return 0;
	}
	if (dport == w->cfg.gtpu_port) {
		int hl;
		__u8 *in;

		if (!may_open(w, ENCAP_GTPU))
			return 0;
		hl = gtpu_header_len(end, w, t, off);
		if (hl < 0)
			return stop(w, CLASS_TOO_DEEP, ENCAP_GTPU, OUTCOME_TOO_DEEP);
		if (hl == 0)
			return stop(w, CLASS_MALFORMED, ENCAP_GTPU, OUTCOME_MALFORMED);
		opened(w, ENCAP_GTPU, rd32(t + 4), 1);
		/* Echo, error indication, end marker: no user packet inside. */
		if (t[1] != 0xff)
			return done(w, CLASS_NON_IP);
		off += hl & 0xff;
		in = data + off;
		if (off > WALK_MAX_OFFSET)
			return done(w, CLASS_TOO_DEEP);
		if (!HAVE(in, off, 1))
			return done(w, CLASS_MALFORMED);
		w->off = off;
		if ((in[0] >> 4) == 4)
			w->next = W_IPV4;
		else if ((in[0] >> 4) == 6)
			w->next = W_IPV6;
		else
			return done(w, CLASS_NON_IP);
		return 0;
	}
	if (dport == w->cfg.mpls_udp_port) {
		if (!may_open(w, ENCAP_MPLS_UDP))
			return 0;
		w->pending = ENCAP_MPLS_UDP;
		w->off = off;
		w->next = W_MPLS;
		return 0;
	}
	w->l4_off = w->off;
	w->upper = 17;
	return done(w, RESULT_BY_ADDRESS);
}

#endif

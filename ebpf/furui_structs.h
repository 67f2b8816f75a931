/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/* Structs shared with user space; the skeleton generates their Rust types. */
#ifndef FURUI_STRUCTS_H
#define FURUI_STRUCTS_H

#include <linux/types.h>

/* LPM trie keys: prefixlen first, then the address in network byte order. */
struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* One per (class, action) slot, per CPU. */
struct class_counter {
	__u64 packets;
	__u64 bytes;
};

/* Load-time settings (rodata): fixed for the life of the loaded program. */
struct furui_cfg {
	/* 0 = mirror (drop what is not captured), 1 = inline (pass it). */
	__u32 inline_mode;
};

/* Which encapsulations the walk opens, and on which UDP ports it
 * recognizes them (host byte order). Written by the daemon at start and on
 * every reload; an unwritten (all-zero, max_layers 0) entry makes every
 * frame undecided, so nothing is captured until it is written. */
struct furui_decap {
	__u32 open;  /* bit (1 << ENCAP_*) set: decapsulate */
	__u32 outer; /* bit set (and not open): classify on the outer header */
	__u16 vxlan_port;
	__u16 geneve_port;
	__u16 gtpu_port;
	__u16 mpls_udp_port;
	__u8 max_layers;      /* 0..ENCAP_MAX_LAYERS */
	__u8 mpls_max_labels; /* 1..MPLS_MAX_LABELS */
	__u8 mpls_pw;         /* MPLS_PW_* */
	__u8 pad;
};

/* How much of a captured frame the program keeps (one entry, written by
 * the daemon from the ruleset at start and on every reload): the headers
 * up to the innermost transport header, plus `payload` bytes of its
 * payload (SNAP_WHOLE: all). An unwritten (all-zero) entry keeps headers
 * only, so a daemon that never wrote it loses payload, never minimization. */
struct furui_snap {
	__u32 payload;
	__u32 flags; /* SNAP_KEEP_HELLOS */
};

/* A flow direction whose later segments user space still needs whole (a
 * ClientHello in several segments): the innermost addresses (IPv4 as
 * ::ffff:a.b.c.d) and ports, as the segments carry them. */
struct hello_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport; /* network byte order, as on the wire */
	__u16 dport;
	__u32 pad;
};

/* Written just before the frame of every redirected packet
 * (bpf_xdp_adjust_meta); AF_XDP copies it into the UMEM right before the
 * frame's first byte, so user space parses the packet the walk judged
 * without walking again. Mechanical fields only. */
#define FURUI_META_MAGIC 0x66757231 /* "fur1" */
struct furui_meta {
	__u32 magic;        /* FURUI_META_MAGIC: the rest is valid */
	__u16 ip_off;       /* the judged IP header, from the frame's first byte */
	__u8 ip_ver;        /* 4 or 6 */
	__u8 class;         /* CLASS_* */
	__u16 chain;        /* opened layers, 4 bits each (ENCAP_* + 1), outermost lowest */
	__u8 tunnel_encap;  /* ENCAP_* + 1 of the innermost tunnel id's layer; 0: none */
	__u8 pad;
	__u32 tunnel_id;
	__u32 orig_len;     /* the frame's length as it arrived */
};

#endif

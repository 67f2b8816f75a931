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

#endif

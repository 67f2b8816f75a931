/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/* Maps of the XDP classifier. Runtime-changing state lives here; the daemon
 * writes the domestic tries and the class authorization array. */
#ifndef FURUI_MAPS_H
#define FURUI_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "furui_consts.h"
#include "furui_structs.h"

/* Domestic IPv4 prefixes. Value unused (presence is the answer). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FURUI_MAX_PREFIXES_V4);
	__type(key, struct lpm_v4_key);
	__type(value, __u8);
} domestic_v4 SEC(".maps");

/* Domestic IPv6 prefixes. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FURUI_MAX_PREFIXES_V6);
	__type(key, struct lpm_v6_key);
	__type(value, __u8);
} domestic_v6 SEC(".maps");

/* class -> 1 if the measure for that class is authorized right now.
 * Only inbound/outbound/transit are ever set; the daemon flips entries
 * when an authorization window opens or closes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_CLASSES);
	__type(key, __u32);
	__type(value, __u32);
} class_authorized SEC(".maps");

/* RX queue index -> AF_XDP socket of the worker that owns that queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, FURUI_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Counters indexed by class * NUM_ACTIONS + action. Per-CPU, so the program
 * increments without atomics; user space sums the CPUs when it reads. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_CLASSES * NUM_ACTIONS);
	__type(key, __u32);
	__type(value, struct class_counter);
} class_stats SEC(".maps");

/* The decapsulation settings (struct furui_decap), one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct furui_decap);
} decap_cfg SEC(".maps");

/* Packets per (encapsulation, outcome): index encap * NUM_OUTCOMES + outcome.
 * A frame counts once per encapsulation layer it carries. Per-CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_ENCAPS * NUM_OUTCOMES);
	__type(key, __u32);
	__type(value, __u64);
} encap_stats SEC(".maps");

/* The snap (struct furui_snap), one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct furui_snap);
} snap_cfg SEC(".maps");

/* Flow directions whose next segments are kept whole, with the ClientHello
 * bytes still to come: the program adds one when a TCP segment starts a
 * TLS record longer than itself (before the next segment can arrive) and
 * removes it once that many payload bytes have passed. The LRU bound keeps
 * an abandoned handshake from holding a slot for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FURUI_MAX_HELLO_FLOWS);
	__type(key, struct hello_key);
	__type(value, __u32);
} hello_flows SEC(".maps");

/* Snap events, per CPU: index SNAP_STAT_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_SNAP_STATS);
	__type(key, __u32);
	__type(value, __u64);
} snap_stats SEC(".maps");

#endif

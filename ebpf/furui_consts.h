/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/* furui XDP classifier: constants shared by the BPF program and user space.
 * User space mirrors these in daemon/src/classify.rs; a unit test there
 * checks the generated skeleton types agree. */
#ifndef FURUI_CONSTS_H
#define FURUI_CONSTS_H

/* Jurisdiction classes. Order is ABI: the class map and counters index by it. */
#define CLASS_DOMESTIC 0
#define CLASS_INBOUND 1
#define CLASS_OUTBOUND 2
#define CLASS_TRANSIT 3
#define CLASS_NON_IP 4
#define CLASS_MALFORMED 5
#define NUM_CLASSES 6

/* What the program did with the packet. */
#define ACTION_REDIRECT 0  /* handed to the AF_XDP socket of its RX queue */
#define ACTION_DROP 1      /* not authorized / not capturable, mirror mode */
#define ACTION_PASS 2      /* not authorized / not capturable, inline mode */
#define ACTION_NO_SOCKET 3 /* authorized, but no socket bound on that queue: fallback verdict */
#define NUM_ACTIONS 4

/* Bounded parsing: at most two VLAN tags (802.1ad S-tag + 802.1Q C-tag). */
#define VLAN_MAX_DEPTH 2

/* Overridable map sizes (katran style): -DFURUI_MAX_PREFIXES_V4=... */
#ifndef FURUI_MAX_PREFIXES_V4
#define FURUI_MAX_PREFIXES_V4 1048576
#endif
#ifndef FURUI_MAX_PREFIXES_V6
#define FURUI_MAX_PREFIXES_V6 262144
#endif
#ifndef FURUI_MAX_QUEUES
#define FURUI_MAX_QUEUES 64
#endif

#endif

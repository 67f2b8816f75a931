/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/* furui XDP classifier: constants shared by the BPF program and user space.
 * daemon/build.rs turns every integer #define here into a Rust constant
 * (daemon/src/classify/abi.rs), from which the Rust enums take their
 * values; tests/bpf_verdicts.rs checks the loaded maps agree. */
#ifndef FURUI_CONSTS_H
#define FURUI_CONSTS_H

/* Jurisdiction classes. Order is ABI: the class map and counters index by it. */
#define CLASS_DOMESTIC 0
#define CLASS_INBOUND 1
#define CLASS_OUTBOUND 2
#define CLASS_TRANSIT 3
#define CLASS_NON_IP 4
#define CLASS_MALFORMED 5
/* A recognized encapsulation that is not opened (and not marked for outer
 * classification), or that cannot be opened here (a later fragment of a
 * tunnel packet, an unsupported GRE version or payload): never captured. */
#define CLASS_UNDECIDED 6
/* More encapsulation layers, MPLS labels or IPv6 extension headers than the
 * walk follows, or a header beyond WALK_MAX_OFFSET: never captured. */
#define CLASS_TOO_DEEP 7
#define NUM_CLASSES 8

/* What the program did with the packet. */
#define ACTION_REDIRECT 0  /* handed to the AF_XDP socket of its RX queue */
#define ACTION_DROP 1      /* not authorized / not capturable, mirror mode */
#define ACTION_PASS 2      /* not authorized / not capturable, inline mode */
#define ACTION_NO_SOCKET 3 /* authorized, but no socket bound on that queue: fallback verdict */
#define NUM_ACTIONS 4

/* Bounded parsing: at most two VLAN tags (802.1ad S-tag + 802.1Q C-tag)
 * at every Ethernet layer, outer and inner. */
#define VLAN_MAX_DEPTH 2

/* Encapsulations the walk recognizes. Order is ABI (encap_stats, the
 * `open`/`outer` bit masks of struct furui_decap, the encap chain). */
#define ENCAP_MPLS 0     /* label stack over Ethernet, 0x8847/0x8848 (RFC 3032) */
#define ENCAP_GRE 1      /* GRE (RFC 2784/2890) carrying IPv4, IPv6, Ethernet, MPLS */
#define ENCAP_ERSPAN 2   /* ERSPAN type I/II (0x88be) and III (0x22eb) over GRE */
#define ENCAP_VXLAN 3    /* VXLAN (RFC 7348), UDP */
#define ENCAP_GENEVE 4   /* Geneve (RFC 8926), UDP */
#define ENCAP_GTPU 5     /* GTP-U G-PDU (3GPP TS 29.281), UDP */
#define ENCAP_IPIP 6     /* IPv4/IPv6 in IPv4/IPv6, protocols 4 and 41 */
#define ENCAP_MPLS_UDP 7 /* MPLS in UDP (RFC 7510) */
#define NUM_ENCAPS 8

/* How the walk left an encapsulation it recognized. */
#define OUTCOME_OPENED 0     /* decapsulated; the cut is made further in */
#define OUTCOME_NOT_OPENED 1 /* not opened by the config, or not openable */
#define OUTCOME_TOO_DEEP 2   /* would exceed max_layers / mpls_max_labels */
#define OUTCOME_MALFORMED 3  /* its header is truncated or invalid */
#define OUTCOME_OUTER 4      /* not opened; classified on the outer header, as configured */
#define NUM_OUTCOMES 5

/* Ethernet pseudowire handling after an MPLS bottom-of-stack label. */
#define MPLS_PW_NONE 0    /* first nibble 4/6 is IP; anything else undecided */
#define MPLS_PW_ETH 1     /* always Ethernet (no control word) */
#define MPLS_PW_ETH_CW 2  /* nibble 0: RFC 4385 control word, then Ethernet; 4/6: IP */

/* Hard bounds of the walk (the config may only lower them). */
#define ENCAP_MAX_LAYERS 4
#define MPLS_MAX_LABELS 8
#define IPV6_EXT_MAX 4
#define GTPU_EXT_MAX 4
/* No header is read that starts further into the frame than this. */
#define WALK_MAX_OFFSET 2048
/* Steps of the walk: one per Ethernet, MPLS stack or IP layer. */
#define WALK_MAX_STEPS 20

/* Snap (struct furui_snap): what of a captured frame reaches user space.
 * SNAP_WHOLE as the payload bound keeps every byte; SNAP_KEEP_HELLOS keeps
 * whole the frames fingerprinting reads (a TCP segment starting a TLS
 * handshake record, a QUIC Initial, a flow in hello_flows). */
#define SNAP_WHOLE 0xffffffff
#define SNAP_KEEP_HELLOS 1
/* snap_stats slots: hello flows followed, and followed to their end. */
#define SNAP_STAT_FOLLOWED 0
#define SNAP_STAT_FOLLOW_DONE 1
#define NUM_SNAP_STATS 2

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
/* Flows whose ClientHello user space is still assembling (LRU). */
#ifndef FURUI_MAX_HELLO_FLOWS
#define FURUI_MAX_HELLO_FLOWS 16384
#endif

#endif

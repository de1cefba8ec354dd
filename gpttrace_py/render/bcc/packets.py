"""Packets (xdp and tc programs): the header structs declared in the C text and the lines that parse a packet."""

from __future__ import annotations

HEADERS = [
    "// The packet headers used here, declared directly: the kernel's uapi headers for them (linux/ip.h,",
    "// linux/in.h, ...) would cost clang about a second to parse on every start.",
    "struct eth_hdr {",
    "    u8 dst[6];",
    "    u8 src[6];",
    "    u16 proto;  // network byte order",
    "} __attribute__((packed));",
    "struct ipv4_hdr {",
    "    u8 version_ihl;  // version (high 4 bits), header length in 32-bit words (low 4 bits)",
    "    u8 tos;",
    "    u16 tot_len;",
    "    u16 id;",
    "    u16 frag_off;",
    "    u8 ttl;",
    "    u8 protocol;",
    "    u16 check;",
    "    u32 saddr;",
    "    u32 daddr;",
    "} __attribute__((packed));",
    "struct ipv6_hdr {",
    "    u32 version_class_flow;",
    "    u16 payload_len;",
    "    u8 nexthdr;",
    "    u8 hop_limit;",
    "    u8 saddr[16];",
    "    u8 daddr[16];",
    "} __attribute__((packed));",
    "struct ports_hdr {",
    "    u16 source;",
    "    u16 dest;",
    "} __attribute__((packed));",
    "#define NET16(x) __builtin_bswap16(x)  // network to host byte order (x86-64 and arm64 are little-endian)",
]


def parse_lines(kind: str) -> list[str]:
    """The lines at the top of a packet function that read its headers into pkt_len, ip_proto, ip_src, src_port..."""
    if kind == "tc":
        src = ["void *data = (void *)(long)skb->data;", "void *data_end = (void *)(long)skb->data_end;",
               "u64 pkt_len = skb->len;", "u32 ifindex = skb->ifindex;"]
    else:
        src = ["void *data = (void *)(long)ctx->data;", "void *data_end = (void *)(long)ctx->data_end;",
               "u64 pkt_len = data_end - data;", "u32 ifindex = ctx->ingress_ifindex;"]
    return [
        "// The packet: Ethernet, then IPv4 or IPv6, then the TCP/UDP ports (0 where a header is absent)",
        *src,
        "u16 eth_proto = 0, src_port = 0, dst_port = 0;",
        "u8 ip_proto = 0;",
        "u32 ip_src = 0, ip_dst = 0;",
        "void *l4 = NULL;",
        "struct eth_hdr *eth = data;",
        "if ((void *)(eth + 1) <= data_end) {",
        "    eth_proto = NET16(eth->proto);",
        "    if (eth_proto == 0x0800) {  // IPv4",
        "        struct ipv4_hdr *ip = (void *)(eth + 1);",
        "        if ((void *)(ip + 1) <= data_end) {",
        "            ip_proto = ip->protocol;",
        "            ip_src = ip->saddr;",
        "            ip_dst = ip->daddr;",
        "            l4 = (void *)ip + (ip->version_ihl & 0x0F) * 4;",
        "        }",
        "    } else if (eth_proto == 0x86DD) {  // IPv6 (extension headers are not followed)",
        "        struct ipv6_hdr *ip6 = (void *)(eth + 1);",
        "        if ((void *)(ip6 + 1) <= data_end) {",
        "            ip_proto = ip6->nexthdr;",
        "            l4 = (void *)(ip6 + 1);",
        "        }",
        "    }",
        "}",
        "if (l4 && (ip_proto == 6 || ip_proto == 17)) {  // TCP or UDP: both start with the two ports",
        "    struct ports_hdr *ports = l4;",
        "    if ((void *)(ports + 1) <= data_end) {",
        "        src_port = NET16(ports->source);",
        "        dst_port = NET16(ports->dest);",
        "    }",
        "}",
    ]

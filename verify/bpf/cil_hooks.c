// SPDX-License-Identifier: GPL-2.0
/*
 * Stand-ins for the tc programs Cilium attaches to the host side of its veths, so a replica shows
 * the same hooks in `bpftool net show` as a real node: cil_from_container on every lxc* ingress
 * (packets leaving a pod), cil_to_host on cilium_net/cilium_host ingress, cil_from_host on
 * cilium_host egress. They only pass packets on (TC_ACT_OK); the replica forwards with routes.
 *
 * Function names are Cilium's program names (what bpftool prints for tcx links). The section of
 * each program must carry the same name, because Debian's bpftool 7.1 prints tc filters as
 * `<object>:[<section>]`. clang 14 refuses a section that shares its name with a function
 * ("symbol already defined"), so the programs are compiled into `cdl_sec_<name>` sections and the
 * replica's build renames them to `<name>` with llvm-objcopy.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define CIL_PROG(name) __attribute__((section("cdl_sec_" #name), used)) int name

CIL_PROG(cil_from_container)(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

CIL_PROG(cil_to_host)(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

CIL_PROG(cil_from_host)(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char __license[] __attribute__((section("license"), used)) = "GPL";

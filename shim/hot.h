/* closepolicy — the calls a busy program makes thousands of times a second (write, send, close of
 * a descriptor the shim does not follow) run through functions marked CP_HOT, which the
 * compiler and linker gather in one stretch of code. On a kernel with page-table isolation and
 * no PCID every system call empties the TLB, so each page of the shim's code touched between
 * two calls is a page-table walk: spread over five pages, that was 4 % of a 64-byte send(). */
#ifndef CLOSEPOLICY_HOT_H
#define CLOSEPOLICY_HOT_H

#define CP_HOT __attribute__((hot))

/* The code a forked child of a server runs (its fork handler, close and dup2 of the sockets it
 * was given, write and sendfile to them, signal(), shutdown, the exit path, the reference table,
 * the counters) goes beside those (the link gathers .text.hot.*): a fork copies no page of a
 * file's mapping, so each 64 KiB block of the object's code a child touches is a page fault in
 * every child (fault-around maps a block at a time). Spread over the object it spanned 52 KiB,
 * two blocks in most children; gathered, about 20 KiB, one block in most. */
#define CP_CHILD __attribute__((section(".text.hot.cp_child")))

/* The data those calls read (the real functions' addresses, the descriptor table's first
 * chunk) goes in sections the link puts side by side (-Wl,--sort-section=name), in this order.
 * A forked child that exits with connections writes that first page of entries (it takes them)
 * and the exit path's once-only flag, placed there too (order 00): one page copied, not two. */
#define CP_HOT_DATA(order) __attribute__((section(".bss.cp_hot." #order)))

#endif

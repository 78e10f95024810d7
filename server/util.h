/*
 * util.h - small helpers shared by the server files: container_of, an
 * intrusive doubly linked list (the owner embeds a wc_link_t; no allocation)
 * and the appenders that format responses without printf.
 */
#ifndef WC_UTIL_H
#define WC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define container_of(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))

#define WC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A list head and a list node have the same shape; an empty list points to
 * itself. A node that is in no list also points to itself, so that removing
 * it twice is harmless. */
typedef struct wc_link {
  struct wc_link *next, *prev;
} wc_link_t;

static inline void wc_list_init(wc_link_t *h) {
  h->next = h->prev = h;
}
static inline int wc_list_empty(const wc_link_t *h) {
  return h->next == h;
}
static inline void wc_list_push(wc_link_t *h, wc_link_t *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void wc_list_remove(wc_link_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}

/* Writes v in decimal at out (room for 20 bytes); returns the length. */
static inline size_t wc_u64_dec(char *out, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

/* Appends len bytes of s at out + pos; returns the new position. */
static inline size_t wc_put(char *out, size_t pos, const char *s, size_t len) {
  memcpy(out + pos, s, len);
  return pos + len;
}
#define WC_PUT_LIT(out, pos, lit) wc_put((out), (pos), (lit), sizeof(lit) - 1)

#endif

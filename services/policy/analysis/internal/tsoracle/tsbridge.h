// A small bridge to the tree-sitter C library (linked in by
// github.com/tree-sitter/go-tree-sitter v0.25.0): it parses and copies the
// whole syntax tree out in one cgo call, instead of one call per node.
#ifndef AIRLOCK_TSBRIDGE_H
#define AIRLOCK_TSBRIDGE_H
#include <stdint.h>

typedef struct al_node {
	uint16_t symbol;
	uint16_t field;
	uint8_t missing;
	uint32_t start, end;
	int32_t parent, first_child, next_sibling;
} al_node;

typedef struct al_result {
	al_node *nodes;  // malloc'd; the caller frees it with free()
	int32_t count;
	int32_t has_error;
	int32_t truncated;  // the node or depth cap stopped the copy
	int32_t cancelled;  // the time limit stopped the parse
} al_result;

void *al_parser_new(const void *language);
void al_parser_delete(void *parser);
void al_use_libc_allocator(void);
al_result al_parse(void *parser, const char *src, uint32_t len, int64_t timeout_ns, int32_t max_nodes, int32_t max_depth);
#endif

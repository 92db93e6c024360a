#include "tsbridge.h"
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

// Declarations from tree_sitter/api.h (v0.25), which is not on the include
// path of this package.
typedef struct TSParser TSParser;
typedef struct TSTree TSTree;
typedef struct TSLanguage TSLanguage;
typedef uint16_t TSSymbol;
typedef uint16_t TSFieldId;
typedef struct { uint32_t row, column; } TSPoint;
typedef enum { TSInputEncodingUTF8, TSInputEncodingUTF16LE, TSInputEncodingUTF16BE, TSInputEncodingCustom } TSInputEncoding;
typedef uint32_t (*DecodeFunction)(const uint8_t *string, uint32_t length, int32_t *code_point);
typedef struct {
	void *payload;
	const char *(*read)(void *payload, uint32_t byte_index, TSPoint position, uint32_t *bytes_read);
	TSInputEncoding encoding;
	DecodeFunction decode;
} TSInput;
typedef struct { void *payload; uint32_t current_byte_offset; bool has_error; } TSParseState;
typedef struct { void *payload; bool (*progress_callback)(TSParseState *state); } TSParseOptions;
typedef struct { uint32_t context[4]; const void *id; const TSTree *tree; } TSNode;
typedef struct { const void *tree; const void *id; uint32_t context[3]; } TSTreeCursor;

TSParser *ts_parser_new(void);
void ts_parser_delete(TSParser *self);
bool ts_parser_set_language(TSParser *self, const TSLanguage *language);
TSTree *ts_parser_parse_with_options(TSParser *self, const TSTree *old_tree, TSInput input, TSParseOptions options);
void ts_parser_reset(TSParser *self);
void ts_tree_delete(TSTree *self);
TSNode ts_tree_root_node(const TSTree *self);
TSSymbol ts_node_symbol(TSNode self);
uint32_t ts_node_start_byte(TSNode self);
uint32_t ts_node_end_byte(TSNode self);
bool ts_node_is_missing(TSNode self);
bool ts_node_has_error(TSNode self);
TSTreeCursor ts_tree_cursor_new(TSNode node);
void ts_tree_cursor_delete(TSTreeCursor *self);
TSNode ts_tree_cursor_current_node(const TSTreeCursor *self);
TSFieldId ts_tree_cursor_current_field_id(const TSTreeCursor *self);
bool ts_tree_cursor_goto_first_child(TSTreeCursor *self);
bool ts_tree_cursor_goto_next_sibling(TSTreeCursor *self);
bool ts_tree_cursor_goto_parent(TSTreeCursor *self);
void ts_set_allocator(void *(*new_malloc)(size_t), void *(*new_calloc)(size_t, size_t),
	void *(*new_realloc)(void *, size_t), void (*new_free)(void *));

// go-tree-sitter routes every allocation through a Go callback; the
// analyser only ever uses libc's allocator, which is what those callbacks
// end in anyway, so memory from either path is freed the same way.
void al_use_libc_allocator(void) { ts_set_allocator(malloc, calloc, realloc, free); }

void *al_parser_new(const void *language) {
	TSParser *p = ts_parser_new();
	if (p && !ts_parser_set_language(p, (const TSLanguage *)language)) {
		ts_parser_delete(p);
		return NULL;
	}
	return p;
}

void al_parser_delete(void *parser) { ts_parser_delete((TSParser *)parser); }

typedef struct {
	const char *src;
	uint32_t len;
	int64_t deadline;
	int cancelled;
} payload;

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *read_src(void *p, uint32_t i, TSPoint pos, uint32_t *n) {
	(void)pos;
	payload *pl = p;
	if (i >= pl->len) {
		*n = 0;
		return "";
	}
	*n = pl->len - i;
	return pl->src + i;
}

static bool progress(TSParseState *st) {
	payload *pl = st->payload;
	if (now_ns() > pl->deadline) {
		pl->cancelled = 1;
		return true;
	}
	return false;
}

al_result al_parse(void *parser, const char *src, uint32_t len, int64_t timeout_ns, int32_t max_nodes, int32_t max_depth) {
	al_result r = {0};
	payload pl = {src, len, now_ns() + timeout_ns, 0};
	TSInput in = {&pl, read_src, TSInputEncodingUTF8, NULL};
	TSParseOptions opts = {&pl, progress};
	TSTree *tree = ts_parser_parse_with_options((TSParser *)parser, NULL, in, opts);
	if (!tree || pl.cancelled) {
		if (tree) ts_tree_delete(tree);
		ts_parser_reset((TSParser *)parser);
		r.cancelled = 1;
		return r;
	}
	TSNode root = ts_tree_root_node(tree);
	r.has_error = ts_node_has_error(root);
	int32_t cap = 256;
	al_node *nodes = malloc(sizeof(al_node) * cap);
	int32_t *stack = malloc(sizeof(int32_t) * 2 * (max_depth + 2));  // (index, last child) per open node
	if (!nodes || !stack) {
		free(nodes);
		free(stack);
		ts_tree_delete(tree);
		r.cancelled = 1;
		return r;
	}
	int32_t depth = 0, count = 0;
	TSTreeCursor cur = ts_tree_cursor_new(root);
	for (;;) {
		// Append the cursor's node under the open node on top of the stack.
		if (count == cap) {
			cap *= 2;
			al_node *grown = realloc(nodes, sizeof(al_node) * cap);
			if (!grown) {
				r.truncated = 1;
				break;
			}
			nodes = grown;
		}
		TSNode n = ts_tree_cursor_current_node(&cur);
		al_node *nd = &nodes[count];
		nd->symbol = ts_node_symbol(n);
		nd->field = ts_tree_cursor_current_field_id(&cur);
		nd->missing = r.has_error ? ts_node_is_missing(n) : 0;
		nd->start = ts_node_start_byte(n);
		nd->end = ts_node_end_byte(n);
		nd->parent = -1;
		nd->first_child = -1;
		nd->next_sibling = -1;
		if (depth > 0) {
			int32_t parent = stack[2 * (depth - 1)], last = stack[2 * (depth - 1) + 1];
			nd->parent = parent;
			if (last < 0) nodes[parent].first_child = count; else nodes[last].next_sibling = count;
			stack[2 * (depth - 1) + 1] = count;
		}
		stack[2 * depth] = count;
		stack[2 * depth + 1] = -1;
		count++;
		if (count >= max_nodes || depth + 1 > max_depth) {
			r.truncated = 1;
			break;
		}
		if (ts_tree_cursor_goto_first_child(&cur)) {
			depth++;
			continue;
		}
		// Leave finished nodes until one has a next sibling.
		bool done = false;
		while (!ts_tree_cursor_goto_next_sibling(&cur)) {
			if (!ts_tree_cursor_goto_parent(&cur)) {
				done = true;
				break;
			}
			depth--;
		}
		if (done) break;
	}
	ts_tree_cursor_delete(&cur);
	ts_tree_delete(tree);
	free(stack);
	r.nodes = nodes;
	r.count = count;
	return r;
}

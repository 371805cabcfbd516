/*
 * sha256Spans(prefix, data, spans, out): out[32 i ..] = SHA-256(prefix ‖ data[spans[2 i] ..
 * spans[2 i + 1]]) for every span, in one call from JavaScript.
 *
 * A log entry, a Merkle node or a path key is a short message, and node:crypto's one-shot hash
 * costs about 1–2 µs per call here, almost all of it the call; hashing a tile's or a bundle's
 * messages in one call costs about 0.2 µs each. SHA-256 itself is OpenSSL's, the copy inside
 * Node (which exports it to addons), so it uses the CPU's SHA extensions as node:crypto does.
 * src/crypto/sha256.ts falls back to node:crypto where this was not built.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdint.h>
#include <node_api.h>

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value sha256_spans(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4)
    return fail(env, "sha256Spans(prefix, data, spans, out): four arguments");
  const uint8_t *prefix, *data;
  uint8_t *out;
  const uint32_t *spans;
  size_t prefix_len, data_len, out_len, spans_len;
  napi_typedarray_type type;
  napi_value unused_buffer;
  size_t unused_offset;
  void *p;
  if (napi_get_typedarray_info(env, argv[0], &type, &prefix_len, &p, &unused_buffer,
                               &unused_offset) != napi_ok || type != napi_uint8_array)
    return fail(env, "sha256Spans: prefix must be a Uint8Array");
  prefix = p;
  if (napi_get_typedarray_info(env, argv[1], &type, &data_len, &p, &unused_buffer,
                               &unused_offset) != napi_ok || type != napi_uint8_array)
    return fail(env, "sha256Spans: data must be a Uint8Array");
  data = p;
  if (napi_get_typedarray_info(env, argv[2], &type, &spans_len, &p, &unused_buffer,
                               &unused_offset) != napi_ok || type != napi_uint32_array ||
      spans_len % 2 != 0)
    return fail(env, "sha256Spans: spans must be a Uint32Array of start, end pairs");
  spans = p;
  if (napi_get_typedarray_info(env, argv[3], &type, &out_len, &p, &unused_buffer,
                               &unused_offset) != napi_ok || type != napi_uint8_array ||
      out_len < spans_len / 2 * 32)
    return fail(env, "sha256Spans: out must be a Uint8Array of 32 bytes per span");
  out = p;
  for (size_t i = 0; i < spans_len; i += 2)
    if (spans[i] > spans[i + 1] || spans[i + 1] > data_len)
      return fail(env, "sha256Spans: a span lies outside data");
  for (size_t i = 0; i < spans_len; i += 2) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    if (prefix_len > 0) SHA256_Update(&ctx, prefix, prefix_len);
    SHA256_Update(&ctx, data + spans[i], spans[i + 1] - spans[i]);
    SHA256_Final(out + i / 2 * 32, &ctx);
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "sha256Spans", NAPI_AUTO_LENGTH, sha256_spans, NULL, &fn) !=
          napi_ok ||
      napi_set_named_property(env, exports, "sha256Spans", fn) != napi_ok)
    return NULL;
  return exports;
}

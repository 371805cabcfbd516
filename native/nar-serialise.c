/*
 * serialise(path, buffer, emit): the NAR of `path`, as `nix-store --dump` writes it, produced
 * into `buffer` and handed to `emit(length)` each time the buffer is full and once at the end.
 * `emit` must use the bytes before it returns: the buffer is written again afterwards.
 *
 * This is the native twin of src/nix/nar-write.ts with src/host/nar-fs.ts, for trees of many
 * small files, where JavaScript's cost per system call dominates; both must give the same bytes
 * and the tests compare them. Directories are walked with file descriptors (openat), so every
 * lookup is one path component. Nothing is followed: a symlink is archived as a symlink.
 *
 * Errors are thrown as JavaScript errors whose `code` is the errno name (`ENOENT`, …) or one of
 * the nix module's codes: `mismatch` (a file changed size while read), `unsupported` (not a
 * regular file, symlink or directory).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>

struct out {
  napi_env env;
  napi_value emit;
  napi_value memory; /* the ArrayBuffer behind data: emit must leave it attached */
  uint8_t *data;
  size_t cap, used;
  char *path; /* the path being archived, for error messages */
  size_t path_len, path_cap;
  int failed; /* an exception is pending */
  int depth;  /* directories entered */
};

/*
 * Directories nested deeper than this are refused (`limit`): each level takes a few hundred
 * bytes of the thread's stack and one file descriptor. The JavaScript serialiser stops earlier,
 * at paths longer than 4096 bytes.
 */
#define MAX_DEPTH 2048

static void fail(struct out *o, const char *code, const char *message) {
  if (o->failed) return;
  o->failed = 1;
  napi_throw_error(o->env, code, message);
}

/* A system error: its message is strerror's; `errno`, `syscall` and `path` (the bytes of the
 * path) are properties, from which src/host/nar-native.ts makes an error like Node's. */
static void fail_errno(struct out *o, const char *syscall, int err) {
  if (o->failed) return;
  o->failed = 1;
  napi_env env = o->env;
  napi_value message, error, number, call, path;
  void *copy;
  if (napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, NULL, message, &error) != napi_ok ||
      napi_create_int32(env, err, &number) != napi_ok ||
      napi_set_named_property(env, error, "errno", number) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &call) != napi_ok ||
      napi_set_named_property(env, error, "syscall", call) != napi_ok ||
      napi_create_buffer_copy(env, o->path_len, o->path, &copy, &path) != napi_ok ||
      napi_set_named_property(env, error, "path", path) != napi_ok ||
      napi_throw(env, error) != napi_ok)
    napi_throw_error(env, NULL, strerror(err));
}

static int flush(struct out *o) {
  if (o->failed) return -1;
  if (o->used == 0) return 0;
  napi_handle_scope scope;
  if (napi_open_handle_scope(o->env, &scope) != napi_ok) {
    fail(o, NULL, "cannot open a handle scope");
    return -1;
  }
  napi_value length, result;
  bool detached = false;
  int rc = 0;
  if (napi_create_uint32(o->env, (uint32_t)o->used, &length) != napi_ok ||
      napi_call_function(o->env, o->emit, o->emit, 1, &length, &result) != napi_ok) {
    o->failed = 1; /* emit threw: its exception is the one pending */
    rc = -1;
  } else if (napi_is_detached_arraybuffer(o->env, o->memory, &detached) != napi_ok || detached) {
    /* The memory is gone (emit transferred it): writing on would write into another's. */
    fail(o, NULL, "bug: emit must not transfer or detach the buffer");
    rc = -1;
  }
  napi_close_handle_scope(o->env, scope);
  o->used = 0;
  return rc;
}

static int put(struct out *o, const void *bytes, size_t n) {
  const uint8_t *p = bytes;
  while (n > 0) {
    if (o->used == o->cap && flush(o) < 0) return -1;
    size_t k = o->cap - o->used < n ? o->cap - o->used : n;
    memcpy(o->data + o->used, p, k);
    o->used += k;
    p += k;
    n -= k;
  }
  return 0;
}

static int put_u64(struct out *o, uint64_t n) {
  uint8_t le[8];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n >> (8 * i));
  return put(o, le, 8);
}

static const uint8_t ZEROS[8];

/* A NAR string: u64 length, bytes, zero padding to a multiple of 8. */
static int put_string(struct out *o, const void *bytes, size_t n) {
  if (put_u64(o, n) < 0 || put(o, bytes, n) < 0) return -1;
  return put(o, ZEROS, (8 - n % 8) % 8);
}

static int put_tokens(struct out *o, const char *const *words) {
  for (; *words != NULL; words++)
    if (put_string(o, *words, strlen(*words)) < 0) return -1;
  return 0;
}

/* Appends "/name" to the error path; returns the old length to restore. */
static size_t path_push(struct out *o, const char *name) {
  size_t old = o->path_len, n = strlen(name);
  if (old + n + 2 > o->path_cap) {
    size_t cap = (old + n + 2) * 2;
    char *p = realloc(o->path, cap);
    if (p == NULL) return old; /* the message is shorter, nothing else depends on it */
    o->path = p;
    o->path_cap = cap;
  }
  o->path[o->path_len++] = '/';
  memcpy(o->path + o->path_len, name, n + 1);
  o->path_len += n;
  return old;
}

static void path_pop(struct out *o, size_t old) {
  o->path_len = old;
  o->path[old] = 0;
}

/*
 * File contents: exactly st_size bytes. Reads ask for one byte more than is left, so a file
 * that grew is seen without another call; a regular file returns fewer bytes only at its end.
 */
static int put_contents(struct out *o, int fd, const struct stat *st) {
  uint64_t size = (uint64_t)st->st_size, left = size;
  if (put_u64(o, size) < 0) return -1;
  for (;;) {
    if (o->used == o->cap && flush(o) < 0) return -1;
    size_t room = o->cap - o->used;
    size_t want = left + 1 < room ? (size_t)left + 1 : room;
    ssize_t n = read(fd, o->data + o->used, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail_errno(o, "read", errno);
      return -1;
    }
    if ((uint64_t)n > left) {
      fail(o, "mismatch", "a file grew while it was read");
      return -1;
    }
    o->used += (size_t)n;
    left -= (uint64_t)n;
    if (n == 0 || (left == 0 && (size_t)n < want)) break;
  }
  if (left != 0) {
    char message[128];
    snprintf(message, sizeof message, "file has %llu bytes, expected %llu: it changed",
             (unsigned long long)(size - left), (unsigned long long)size);
    fail(o, "mismatch", message);
    return -1;
  }
  return put(o, ZEROS, (8 - size % 8) % 8);
}

static int compare_names(const void *a, const void *b) {
  /* strcmp compares as unsigned char: byte order, as Nix sorts entries. */
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int put_node(struct out *o, int dfd, const char *name, unsigned char type);

static void free_names(char **names, size_t n) {
  for (size_t i = 0; names != NULL && i < n; i++) free(names[i] - 1);
  free(names);
}

/*
 * The entry names of the directory `fd` (which it closes), sorted, each preceded by one byte:
 * its type as readdir gave it. Free with free_names.
 */
static char **list_directory(struct out *o, int fd, size_t *count) {
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    fail_errno(o, "opendir", errno);
    close(fd);
    return NULL;
  }
  size_t n = 0, cap = 64;
  char **names = malloc(cap * sizeof *names);
  int err = names == NULL ? ENOMEM : 0;
  struct dirent *e;
  while (err == 0) {
    errno = 0;
    if ((e = readdir(dir)) == NULL) {
      err = errno;
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (n == cap) {
      char **more = realloc(names, 2 * cap * sizeof *names);
      if (more == NULL) {
        err = ENOMEM;
        break;
      }
      names = more;
      cap *= 2;
    }
    size_t len = strlen(e->d_name);
    char *entry = malloc(len + 2);
    if (entry == NULL) {
      err = ENOMEM;
      break;
    }
    entry[0] = (char)e->d_type;
    memcpy(entry + 1, e->d_name, len + 1);
    names[n++] = entry + 1;
  }
  closedir(dir);
  if (err != 0) {
    fail_errno(o, "readdir", err);
    free_names(names, n);
    return NULL;
  }
  qsort(names, n, sizeof *names, compare_names);
  *count = n;
  return names;
}

static const char *const OPEN_DIRECTORY[] = {"(", "type", "directory", NULL};
static const char *const ENTRY_NAME[] = {"entry", "(", "name", NULL};
static const char *const NODE[] = {"node", NULL};
static const char *const CLOSE[] = {")", NULL};
static const char *const OPEN_REGULAR[] = {"(", "type", "regular", NULL};
static const char *const EXECUTABLE[] = {"executable", "", NULL};
static const char *const CONTENTS[] = {"contents", NULL};
static const char *const OPEN_SYMLINK_TARGET[] = {"(", "type", "symlink", "target", NULL};

static int put_directory(struct out *o, int fd) {
  if (o->depth >= MAX_DEPTH) {
    fail(o, "limit", "the tree is nested deeper than 2048 directories");
    return -1;
  }
  size_t count = 0;
  int copy = dup(fd); /* closed with the listing; fd stays open for openat */
  if (copy < 0) {
    fail_errno(o, "dup", errno);
    return -1;
  }
  char **names = list_directory(o, copy, &count);
  int rc = names == NULL ? -1 : put_tokens(o, OPEN_DIRECTORY);
  for (size_t i = 0; rc == 0 && i < count; i++) {
    const char *name = names[i];
    if (i > 0 && strcmp(names[i - 1], name) == 0) {
      /* A listing taken while the directory changed may repeat a name; a NAR may not. */
      fail(o, "malformed", "a directory lists one file name twice");
      rc = -1;
      break;
    }
    size_t old = path_push(o, name);
    rc = put_tokens(o, ENTRY_NAME);
    if (rc == 0) rc = put_string(o, name, strlen(name));
    if (rc == 0) rc = put_tokens(o, NODE);
    o->depth++;
    if (rc == 0) rc = put_node(o, fd, name, (unsigned char)name[-1]);
    o->depth--;
    if (rc == 0) rc = put_tokens(o, CLOSE);
    path_pop(o, old);
  }
  free_names(names, count);
  return rc == 0 ? put_tokens(o, CLOSE) : -1;
}

static int put_symlink(struct out *o, int dfd, const char *name) {
  char target[PATH_MAX + 1];
  ssize_t n = readlinkat(dfd, name, target, sizeof target);
  if (n < 0) {
    fail_errno(o, "readlink", errno);
    return -1;
  }
  if ((size_t)n > PATH_MAX) {
    fail(o, "limit", "a symlink target is longer than 4096 bytes");
    return -1;
  }
  if (put_tokens(o, OPEN_SYMLINK_TARGET) < 0 || put_string(o, target, (size_t)n) < 0) return -1;
  return put_tokens(o, CLOSE);
}

/*
 * One file system object, `name` in the directory `dfd`. A regular file or directory (as
 * readdir typed it) is opened without following a symlink and checked with fstat, one path
 * lookup; anything else, or an entry that changed type since, is looked at with lstat first.
 */
static int put_node(struct out *o, int dfd, const char *name, unsigned char type) {
  struct stat st;
  int fd = -1;
  /* O_NONBLOCK: should a regular file be swapped for a FIFO meanwhile, opening cannot hang. */
  const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  if (type == DT_REG || type == DT_DIR) {
    fd = openat(dfd, name, flags);
    if (fd >= 0 && fstat(fd, &st) < 0) {
      fail_errno(o, "fstat", errno);
      close(fd);
      return -1;
    }
    if (fd < 0 && errno != ELOOP && errno != ENXIO) {
      fail_errno(o, "open", errno);
      return -1;
    }
  }
  if (fd < 0) {
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      fail_errno(o, "lstat", errno);
      return -1;
    }
    if (S_ISLNK(st.st_mode)) return put_symlink(o, dfd, name);
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
      fd = openat(dfd, name, flags);
      if (fd < 0 || fstat(fd, &st) < 0) {
        fail_errno(o, fd < 0 ? "open" : "fstat", errno);
        if (fd >= 0) close(fd);
        return -1;
      }
    }
  }
  int rc;
  if (fd >= 0 && S_ISREG(st.st_mode)) {
    rc = put_tokens(o, OPEN_REGULAR);
    if (rc == 0 && (st.st_mode & S_IXUSR)) rc = put_tokens(o, EXECUTABLE);
    if (rc == 0) rc = put_tokens(o, CONTENTS);
    if (rc == 0) rc = put_contents(o, fd, &st);
    if (rc == 0) rc = put_tokens(o, CLOSE);
  } else if (fd >= 0 && S_ISDIR(st.st_mode)) {
    rc = put_directory(o, fd);
  } else {
    char message[256];
    snprintf(message, sizeof message, "%.200s is not a regular file, symlink or directory",
             o->path);
    fail(o, "unsupported", message);
    rc = -1;
  }
  if (fd >= 0) close(fd);
  return rc;
}

static napi_value serialise(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *path_data, *data;
  size_t path_len, cap, offset;
  napi_valuetype emit_type;
  napi_typedarray_type type;
  napi_value memory;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_buffer_info(env, argv[0], &path_data, &path_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &cap, &data, &memory, &offset) != napi_ok ||
      type != napi_uint8_array || cap < 64 || napi_typeof(env, argv[2], &emit_type) != napi_ok ||
      emit_type != napi_function) {
    napi_throw_type_error(env, NULL, "serialise(path: Buffer, buffer: Buffer, emit: Function)");
    return NULL;
  }
  if (path_len == 0 || memchr(path_data, 0, path_len) != NULL) {
    napi_throw_error(env, "ENOENT", "ENOENT: a path must not be empty or contain NUL");
    return NULL;
  }
  struct out o = {.env = env,
                  .emit = argv[2],
                  .memory = memory,
                  .data = data,
                  .cap = cap,
                  .path = malloc(path_len + 256),
                  .path_cap = path_len + 256};
  if (o.path == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  memcpy(o.path, path_data, path_len);
  o.path[path_len] = 0;
  o.path_len = path_len;
  const char *const magic[] = {"nix-archive-1", NULL};
  char *root = strdup(o.path);
  if (root != NULL && put_tokens(&o, magic) == 0 && put_node(&o, AT_FDCWD, root, DT_UNKNOWN) == 0)
    flush(&o);
  if (root == NULL) fail(&o, "ENOMEM", "out of memory");
  free(root);
  free(o.path);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "serialise", NAPI_AUTO_LENGTH, serialise, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "serialise", fn) != napi_ok)
    return NULL;
  return exports;
}

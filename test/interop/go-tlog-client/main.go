// Command go-tlog-client reads an Accord log through the Go reference implementation of
// transparency logs (golang.org/x/mod/sumdb/tlog and sumdb/note) and verifies all of it:
// the checkpoint signature, every tile the reference reader needs (checked against the signed
// tree hash), an inclusion proof for every entry, and consistency proofs to earlier sizes.
//
// Usage: go-tlog-client BASE-URL VKEY
//
// The reference reader speaks the sumdb tile paths (tile/8/L/N, tile/8/data/N); this program
// maps them to C2SP tlog-tiles paths (tile/L/N, tile/entries/N) and parses C2SP entry bundles
// (uint16 big-endian length-prefixed entries). It prints "ok <tree size>" on success.
package main

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func get(base, path string) []byte {
	resp, err := http.Get(base + "/" + path)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		fail("GET %s: HTTP %d", path, resp.StatusCode)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("GET %s: %v", path, err)
	}
	return data
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-tlog-client: "+format+"\n", args...)
	os.Exit(1)
}

// c2spPath turns a sumdb tile path into the C2SP tlog-tiles path of the same tile.
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), "tile/8/")
	p = strings.Replace(p, "data/", "entries/", 1)
	return "tile/" + p
}

type tileReader struct{ base string }

func (r tileReader) Height() int { return 8 }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		out[i] = get(r.base, c2spPath(t))
	}
	return out, nil
}

func (r tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func main() {
	if len(os.Args) != 3 {
		fail("usage: go-tlog-client BASE-URL VKEY")
	}
	base, vkey := strings.TrimSuffix(os.Args[1], "/"), os.Args[2]
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("vkey: %v", err)
	}
	msg := get(base, "checkpoint")
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("checkpoint: unexpected text %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		fail("checkpoint root: %v", err)
	}
	var root tlog.Hash
	copy(root[:], rootBytes)
	tree := tlog.Tree{N: size, Hash: root}
	// TileHashReader checks every tile it reads against the tree hash.
	hashes := tlog.TileHashReader(tree, tileReader{base})
	th, err := tlog.TreeHash(size, hashes)
	if err != nil || th != root {
		fail("tree hash: %v", err)
	}
	for start := int64(0); start < size; start += 256 {
		width := size - start
		if width > 256 {
			width = 256
		}
		bundle := get(base, c2spPath(tlog.Tile{H: 8, L: -1, N: start / 256, W: int(width)}))
		for i := int64(0); i < width; i++ {
			if len(bundle) < 2 {
				fail("bundle %d: truncated", start/256)
			}
			length := int(binary.BigEndian.Uint16(bundle))
			if len(bundle) < 2+length {
				fail("bundle %d: truncated entry", start/256)
			}
			entry := bundle[2 : 2+length]
			bundle = bundle[2+length:]
			index := start + i
			proof, err := tlog.ProveRecord(size, index, hashes)
			if err != nil {
				fail("prove entry %d: %v", index, err)
			}
			if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(entry)); err != nil {
				fail("entry %d: %v", index, err)
			}
		}
		if len(bundle) != 0 {
			fail("bundle %d: trailing bytes", start/256)
		}
	}
	for _, old := range []int64{1, size / 3, size - 1} {
		if old < 1 || old >= size {
			continue
		}
		oldHash, err := tlog.TreeHash(old, hashes)
		if err != nil {
			fail("tree hash %d: %v", old, err)
		}
		proof, err := tlog.ProveTree(size, old, hashes)
		if err != nil {
			fail("prove tree %d: %v", old, err)
		}
		if err := tlog.CheckTree(proof, size, root, old, oldHash); err != nil {
			fail("consistency %d → %d: %v", old, size, err)
		}
	}
	fmt.Printf("ok %d\n", size)
}

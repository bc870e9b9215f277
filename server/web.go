package server

import (
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
)

// webHandler serves the browser library and pages (Config.Web) under
// /.switchboard/web/. The module is public code that pages on any origin
// import, so every answer carries Access-Control-Allow-Origin: *. Each file
// has an ETag made from its content (it changes when the file changes) and
// is revalidated on every use (Cache-Control: no-cache), so a broker
// upgrade never leaves a page on a stale module; an unchanged file costs a
// 304. Types are set here for the extensions the library uses, .d.ts
// included (Go's table would call it video/mp2t).
type webHandler struct {
	fsys  fs.FS
	files http.Handler

	mu    sync.Mutex
	etags map[string]string // file name → ETag; guarded by mu (files are immutable: embedded)
}

func newWebHandler(fsys fs.FS) *webHandler {
	return &webHandler{fsys: fsys, etags: make(map[string]string),
		files: http.StripPrefix(webPrefix, http.FileServerFS(fsys))}
}

const webPrefix = "/.switchboard/web/"

var webTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".ts":   "text/plain; charset=utf-8", // switchboard.d.ts: TypeScript declarations, shown as text
	".css":  "text/css; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".json": "application/json",
}

func (h *webHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodOptions {
		hdr.Set("Access-Control-Allow-Methods", "GET, HEAD")
		hdr.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, webPrefix)
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	if etag, ok := h.etag(name); ok {
		hdr.Set("ETag", etag)
		hdr.Set("Cache-Control", "no-cache")
		if t, ok := webTypes[path.Ext(name)]; ok {
			hdr.Set("Content-Type", t)
		}
	}
	h.files.ServeHTTP(w, r)
}

// etag returns the ETag of a file, computed once.
func (h *webHandler) etag(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.etags[name]; ok {
		return e, e != ""
	}
	b, err := fs.ReadFile(h.fsys, name)
	if err != nil {
		if len(h.etags) < 1024 { // bounded: names come from requests
			h.etags[name] = ""
		}
		return "", false
	}
	sum := sha256.Sum256(b)
	e := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	h.etags[name] = e
	return e, true
}

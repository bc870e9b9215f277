package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

func TestWebFilesFromAnyOrigin(t *testing.T) {
	fsys := fstest.MapFS{
		"switchboard.js":   {Data: []byte("export const x = 1;\n")},
		"switchboard.d.ts": {Data: []byte("export declare const x: number;\n")},
		"index.html":       {Data: []byte("<!doctype html>\n")},
	}
	srv := httptest.NewServer(newWebHandler(fsys))
	defer srv.Close()
	get := func(path string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := get("/.switchboard/web/switchboard.js", map[string]string{"Origin": "https://elsewhere.example"})
	if res.StatusCode != 200 {
		t.Fatalf("GET switchboard.js: %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Origin": "*",
		"Content-Type":                "text/javascript; charset=utf-8",
		"Cache-Control":               "no-cache",
		"X-Content-Type-Options":      "nosniff",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	etag := res.Header.Get("ETag")
	if len(etag) < 10 {
		t.Fatalf("ETag = %q, want a content hash", etag)
	}
	if res := get("/.switchboard/web/switchboard.js", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the same ETag: %d, want 304", res.StatusCode)
	}
	if ts := get("/.switchboard/web/switchboard.d.ts", nil); ts.Header.Get("Content-Type") != "text/plain; charset=utf-8" || ts.Header.Get("ETag") == etag {
		t.Errorf("d.ts: type %q, ETag %q (must differ from the module's)", ts.Header.Get("Content-Type"), ts.Header.Get("ETag"))
	}

	// The file changes: so does its ETag, and the old one no longer matches.
	fsys["switchboard.js"] = &fstest.MapFile{Data: []byte("export const x = 2;\n")}
	srv2 := httptest.NewServer(newWebHandler(fsys))
	defer srv2.Close()
	req, _ := http.NewRequest(http.MethodGet, srv2.URL+"/.switchboard/web/switchboard.js", nil)
	req.Header.Set("If-None-Match", etag)
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != 200 || res2.Header.Get("ETag") == etag {
		t.Errorf("changed file: %d with ETag %q, want 200 and a new ETag", res2.StatusCode, res2.Header.Get("ETag"))
	}
	if res := get("/.switchboard/web/missing.js", nil); res.StatusCode != 404 || res.Header.Get("ETag") != "" {
		t.Errorf("missing file: %d, ETag %q", res.StatusCode, res.Header.Get("ETag"))
	}
}

package web

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestVendoredClone: vendor/structured-clone is the pinned npm package
// @ungap/structured-clone (package.json), byte for byte: updating it is
// `npm install` and a copy, never an edit.
func TestVendoredClone(t *testing.T) {
	need(t, "@ungap/structured-clone (npm)", filepath.Join("node_modules", "@ungap", "structured-clone", "package.json"))
	for _, f := range []string{"serialize.js", "deserialize.js", "types.js", "LICENSE"} {
		src := filepath.Join("node_modules", "@ungap", "structured-clone", "esm", f)
		if f == "LICENSE" {
			src = filepath.Join("node_modules", "@ungap", "structured-clone", f)
		}
		want, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("vendor", "structured-clone", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("vendor/structured-clone/%s differs from %s: copy it again", f, src)
		}
	}
	if _, err := Files.Open("vendor/structured-clone/serialize.js"); err != nil {
		t.Errorf("the broker does not serve the vendored serializer: %v", err)
	}
}

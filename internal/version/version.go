// Package version reports which Switchboard this binary is: the module
// version and VCS revision the Go toolchain records in the build info, or
// a version set at link time by packagers
// (-ldflags "-X github.com/switchboard-dev/switchboard/internal/version.version=1.2.3").
//
// It knows nothing of flags, HTTP or metrics; those read Get.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set with -ldflags -X by `make package`; empty: from the build
// info.
var version string

// Info is what Get reports.
type Info struct {
	// Version is the module version ("v1.2.0" for `go install …@v1.2.0`),
	// the linker-set version, or "devel" for a build from a checkout.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, when known,
	// with "+dirty" when the tree had changes.
	Revision string `json:"revision,omitempty"`
	// GoVersion is the toolchain that built it.
	GoVersion string `json:"go"`
}

// Get returns the binary's version information.
func Get() Info {
	i := Info{Version: version, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if i.Version == "" {
			i.Version = "unknown"
		}
		return i
	}
	if i.Version == "" {
		i.Version = bi.Main.Version
	}
	if i.Version == "" || i.Version == "(devel)" {
		i.Version = "devel"
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
			if len(i.Revision) > 12 {
				i.Revision = i.Revision[:12]
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && i.Revision != "" {
		i.Revision += "+dirty"
	}
	return i
}

// String is the one-line form `switchboard version` prints:
// "switchboard v1.2.0 (revision 0123456789ab, go1.26.8)".
func (i Info) String() string {
	if i.Revision != "" {
		return fmt.Sprintf("switchboard %s (revision %s, %s)", i.Version, i.Revision, i.GoVersion)
	}
	return fmt.Sprintf("switchboard %s (%s)", i.Version, i.GoVersion)
}

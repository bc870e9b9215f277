package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux this runs on.
const clockTicks = 100

// procStat is what the harness reads from /proc/PID/stat.
type procStat struct {
	ppid      int
	cpuTicks  uint64 // utime + stime
	rssPages  uint64
	startTime uint64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	// The command name is in parentheses and may hold spaces: fields start
	// after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse stat of pid %d: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("parse stat of pid %d: %d fields", pid, len(f))
	}
	num := func(field int) uint64 {
		v, _ := strconv.ParseUint(f[field-3], 10, 64)
		return v
	}
	return procStat{
		ppid:      int(num(4)),
		cpuTicks:  num(14) + num(15),
		startTime: num(22),
		rssPages:  num(24),
	}, nil
}

// processTree returns root and all its descendants that are alive now.
func processTree(root int) []int {
	children := map[int][]int{}
	ents, _ := filepath.Glob("/proc/[0-9]*")
	for _, e := range ents {
		pid, err := strconv.Atoi(filepath.Base(e))
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// usage is the summed CPU time and resident memory of a set of processes.
type usage struct {
	cpuSeconds float64
	rssBytes   uint64
}

// measure sums CPU and RSS over the process trees rooted at roots.
// Processes that vanished are skipped.
func measure(roots []int) usage {
	page := uint64(os.Getpagesize())
	var u usage
	seen := map[int]bool{}
	for _, r := range roots {
		for _, pid := range processTree(r) {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			st, err := readProcStat(pid)
			if err != nil {
				continue
			}
			u.cpuSeconds += float64(st.cpuTicks) / clockTicks
			u.rssBytes += st.rssPages * page
		}
	}
	return u
}

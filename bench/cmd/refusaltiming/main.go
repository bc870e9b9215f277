// Command refusaltiming measures whether a client can tell a service's
// refusal from "no service" by the time the broker takes (issue 12's
// privacy promise): it runs the switchboard binary as a production broker,
// a Go SDK service and a browser-tab service (Chromium) that refuse every
// client, and reports how well the best classifier it can train (a
// statistic of N probes and a threshold) tells them from an unknown
// scope. 50% is a coin; the goal is at most 60%.
//
//	go run ./bench/cmd/refusaltiming                # the default floor
//	go run ./bench/cmd/refusaltiming -floor off     # no floor: the leak it closes
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/bench"
)

func main() {
	var o bench.RefusalOptions
	flag.StringVar(&o.Repo, "repo", ".", "module root (the binary is built from it; web/ holds the tab)")
	flag.IntVar(&o.Probes, "n", 20, "probes per trial (1 to 20); the classifier sees all N")
	flag.IntVar(&o.Train, "train", 60, "training trials per class")
	flag.IntVar(&o.Trials, "trials", 100, "test trials per class")
	flag.IntVar(&o.Parallel, "parallel", 8, "trials in flight at once")
	flag.StringVar(&o.Floor, "floor", "", `limits.refusal_floor ("" for the default, "off" for none)`)
	flag.StringVar(&o.Jitter, "jitter", "", `limits.refusal_jitter ("" for the default)`)
	flag.BoolVar(&o.Tab, "tab", true, "also measure a service in a browser tab (Chromium, web/node_modules)")
	flag.DurationVar(&o.Timeout, "timeout", 30*time.Second, "per probe")
	out := flag.String("json", "", "also write the report as JSON to this file")
	flag.Parse()
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunRefusal(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "refusaltiming:", err)
		os.Exit(1)
	}
	fmt.Print(rep.Text())
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "refusaltiming:", err)
			os.Exit(1)
		}
	}
}

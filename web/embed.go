// Package web holds Switchboard's browser library (an ES module with
// TypeScript declarations, no build step) and the pages the broker serves:
// the start page with the live dashboard and the "this tab is a WebSocket
// server" demo.
//
// The broker mounts Files at /.switchboard/web/ (the module's URL is
// /.switchboard/web/switchboard.js) and serves index.html at / when no scope
// claims it. This package only carries files; it knows nothing of the broker.
package web

import "embed"

// Files is the library and the pages, rooted at this directory
// (switchboard.js, switchboard.d.ts, index.html, …). Tests and node_modules
// are not part of it.
//
//go:embed *.js *.d.ts *.html *.css vendor/structured-clone
var Files embed.FS

package main

import "github.com/switchboard-dev/switchboard/web"

// The broker serves the browser library and pages built into the binary.
func init() { webFiles = web.Files }

package apps_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/apps"
	"github.com/switchboard-dev/switchboard/scope"
)

// The config's "apps" section: a server, a client its manifest lists, and
// a client that needs a chooser token.
const appsJSON = `[
  {"id": "chat", "name": "Chat", "credential_hash": "%s",
   "listen": ["/chat/"], "admit": {"apps": ["notes"], "tokens": true}},
  {"id": "notes", "name": "Notes", "credential_hash": "%s", "servers": ["chat"]},
  {"id": "camera", "name": "Camera", "origins": ["https://camera.example"]}
]`

func ExampleNewDirectory() {
	chatSecret, notesSecret := apps.NewSecret(), apps.NewSecret()
	chatHash, _ := apps.HashCredential(chatSecret)
	notesHash, _ := apps.HashCredential(notesSecret)

	var cfg []apps.AppConfig
	if err := apps.DecodeStrict(strings.NewReader(fmt.Sprintf(appsJSON, chatHash, notesHash)), &cfg); err != nil {
		fmt.Println(err)
		return
	}
	dir, err := apps.NewDirectory(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	notes, ok := dir.Authenticate(notesSecret)
	fmt.Println(notes.App, ok)
	fmt.Println(dir.MayListen("chat", "", "/chat/rooms/"))
	fmt.Println(dir.MayListen("notes", "", "/chat/"))
	fmt.Println(dir.MayConnect(notes, "chat"))

	camera, _ := dir.ByOrigin("https://camera.example")
	err = dir.MayConnect(camera, "chat")
	fmt.Println(apps.ReasonOf(err), err)
	// Output:
	// notes true
	// <nil>
	// app notes may not listen on /chat/: it overlaps scope /chat/ of app chat
	// <nil>
	// not_in_servers app camera (https://camera.example) may not connect to chat: chat is not in its servers
}

func ExampleSealer() {
	dir, _ := os.MkdirTemp("", "switchboard-example")
	defer os.RemoveAll(dir)
	sealer, err := apps.LoadOrCreateKey(filepath.Join(dir, "token.key"))
	if err != nil {
		fmt.Println(err)
		return
	}
	revs, err := apps.OpenRevocations(filepath.Join(dir, "revocations.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	sealer = sealer.WithRevocations(revs)

	// The chooser lets camera reach chat for a day.
	token, grant, _ := sealer.Issue("camera", "chat", 24*time.Hour)
	u, _ := scope.ParseAppURL("wsapp://" + token + "/")
	fmt.Println(u.Token, len(token) == apps.TokenLen)

	g, err := sealer.Open(u.Authority, "camera", time.Now())
	fmt.Println(g.Target, err)
	_, err = sealer.Open(u.Authority, "notes", time.Now())
	fmt.Println(apps.ReasonOf(err))

	_ = revs.RevokeID(grant.ID)
	_, err = sealer.Open(u.Authority, "camera", time.Now())
	fmt.Println(apps.ReasonOf(err))
	// Output:
	// true true
	// chat <nil>
	// token_invalid
	// token_revoked
}

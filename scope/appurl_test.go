package scope

import "testing"

func TestParseAppURL(t *testing.T) {
	u, err := ParseAppURL("wsapp://chat")
	if err != nil || u != (AppURL{Authority: "chat", Path: "/"}) {
		t.Fatalf("ParseAppURL = %+v, %v", u, err)
	}
	for _, bad := range []string{"ws://chat/", "wsapp://Chat/", "wsapp://chat:80/", "wsapp://u@chat/", "wsapp:chat", "wsapp://chat/#x", "wsapp:///x"} {
		if u, err := ParseAppURL(bad); err == nil {
			t.Errorf("ParseAppURL(%q) = %+v", bad, u)
		}
	}
}

package apps

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzOpen feeds Open arbitrary tokens and holders. Open must not panic,
// must fail with one of the token errors, and must open nothing but the
// tokens the key actually issued, for their own holders. The seeds (a real
// token, its neighbours and junk) run as unit tests under go test.
// fuzzTokens were issued once under the all-sevens key, valid until 2100:
// token, grant id, holder, target. They are constants because every fuzz
// worker process runs the setup again, and Issue is random.
var fuzzTokens = [][4]string{
	{"ag2kb4djsuhfpswqbtnbvia76nwhucpbp2o4e4ro577plk322zo4jxcirtbiob3pidgmnpwuf7gwqzvrbribgr6moj7ormfdddbq2q4dw4zgyoubw7qhab2euvyfhdqly6hhrmf7wzpwzfk6jxdjihraycgaltgeol4724cgdtck7wonsn7gxyerf5lyexw6l3hzdm5oloce5y6tikmbkfiyki44ykpzom", "ovls43imu3qenekswxwa", "camera", "chat"},
	{"aej2eot7jaj2u33f7z7jtkyn76tjn4ij42gglcseopn3jpittulakmkj2kympqeewmyrzoidbpvt3znbuojrbmu37756pntjgcaud56qi25te6px7v47yyumslkhqyrxkmeaikvazz7f45lmtcmxb7hot23xwt6qwri5wnigm5ytawu2x7u64grl5gv4rdslcatsqm3hk25c325gafa2s6kwl5465xuf4y", "lazzine2wsnk6ur4ugqq", "a", "b"},
	{"aeo7rcywmneiungjfx4aas5wcbfuk6fs4cnx4owiyxipnf4s4ujzgc5cgl2knbgaa3e7szal3cjpca7ovjmgruia2kapxosnel3hme4nij5fqqemp5r67gokk6hshh3tmkiakntpapiyjmk5atuimakur5brht4rmz4dfupyymtqx45qlmyi4r3mzjsoygukbydoe4j6h5ij222rgtdmyi4fbrusrfkmk4", "kxo3egzywblm3rrkmaia", "notes", "x.y-z"},
}

func FuzzOpen(f *testing.F) {
	s, err := NewSealer(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	issued := map[string][4]string{}
	for _, ft := range fuzzTokens {
		tok := ft[0]
		issued[tok] = ft
		f.Add(tok, ft[2])
		f.Add(tok, ft[3])
		f.Add(tok[:len(tok)-1]+"a", ft[2])
		f.Add(tok[1:]+"a", ft[2])
	}
	f.Add("", "")
	f.Add("chat", "camera")
	f.Add(string(make([]byte, TokenLen)), "camera")
	f.Add(strings.Repeat("a", TokenLen), "camera")
	f.Add(strings.Repeat("7", TokenLen), "camera")
	now := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, token, holder string) {
		g, err := s.Open(token, holder, now)
		if err != nil {
			if ReasonOf(err) != ReasonTokenInvalid && !errors.Is(err, ErrTokenExpired) && !errors.Is(err, ErrTokenRevoked) {
				t.Fatalf("Open(%q, %q): unexpected error %v", token, holder, err)
			}
			return
		}
		want, ok := issued[token]
		if !ok || want[2] != holder {
			t.Fatalf("Open(%q, %q) = %+v: a token the key did not issue to this holder", token, holder, g)
		}
		if g.ID != want[1] || g.Holder != holder || g.Target != want[3] {
			t.Fatalf("Open = %+v, issued %v", g, want)
		}
	})
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/config"
	"github.com/switchboard-dev/switchboard/grant"
)

func init() {
	commands["grant"] = command{runGrant, "mint a listen grant for a page or service, or make a grant key (docs/BROWSER.md)",
		"grant mint --config switchboard.json --key site-1 --scope /site/demo/"}
}

const grantUsage = `usage:
  switchboard grant mint --config FILE --key ID [--scope S]... [--prefix P] [--origin O] [--ttl 5m] [--max-channels N]
  switchboard grant mint --alg EdDSA|ES256 --kid ID --private-key FILE ...
  switchboard grant key --alg HS256|EdDSA|ES256 --out NAME

mint prints a listen grant (a JWT) for a page or a service; key makes key
material: NAME.key for HS256 (list it as secret_file), NAME.pem (private,
for the minting backend) and NAME.pub.pem (public_key_file) for EdDSA and
ES256. See docs/BROWSER.md.`

func runGrant(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{msg: grantUsage}
	}
	if isHelp(args[0]) {
		fmt.Println(grantUsage + "\n\nRun \"switchboard grant mint -h\" (key) for the flags of each.")
		return nil
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Println(grantUsage)
		return nil
	case "mint":
		return runGrantMint(args[1:])
	case "key":
		return runGrantKey(args[1:])
	}
	return usageError{msg: fmt.Sprintf("unknown grant command %q\n%s", args[0], grantUsage)}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runGrantMint(args []string) error {
	fl := flag.NewFlagSet("grant mint", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "the broker's config file: sign with the HS256 key --key of its grants section")
	keyID := fl.String("key", "", "key id in the config's grants.keys (HS256)")
	alg := fl.String("alg", "", "with --private-key: EdDSA or ES256")
	kid := fl.String("kid", "", "with --private-key: the key id the broker lists the public key under")
	privPath := fl.String("private-key", "", "PEM private key file (EdDSA or ES256)")
	var scopes multiFlag
	fl.Var(&scopes, "scope", "a scope the holder may listen on (repeat for more)")
	prefix := fl.String("prefix", "", "a prefix under which the holder may create private scopes")
	origin := fl.String("origin", "", "bind the grant to this page origin (https://app.example)")
	ttl := fl.Duration("ttl", 5*time.Minute, "lifetime")
	maxCh := fl.Int("max-channels", 0, "cap on open channels (0: none)")
	sub := fl.String("subject", "", "sub claim: who the grant is for (logs)")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fl.Arg(0))}
	}
	if len(scopes) == 0 && *prefix == "" {
		return usageError{msg: "give --scope or --prefix: a grant that covers nothing admits nothing"}
	}
	var signer *grant.Signer
	var err error
	switch {
	case *privPath != "":
		if *alg == "" || *kid == "" {
			return usageError{msg: "--private-key needs --alg and --kid"}
		}
		signer, err = grant.LoadSigner(*kid, *alg, *privPath)
	case *cfgPath != "" && *keyID != "":
		signer, err = configSigner(*cfgPath, *keyID)
	default:
		return usageError{msg: "give --config FILE --key ID (an HS256 key), or --alg, --kid and --private-key"}
	}
	if err != nil {
		return err
	}
	c := grant.Claims{Scopes: scopes, Prefix: *prefix, Origin: *origin, MaxChannels: *maxCh}
	c.Subject = *sub
	tok, err := signer.Mint(c, *ttl)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

// configSigner finds key id in the config's grants section; only an HS256
// key can sign from there (the broker holds no private keys).
func configSigner(cfgPath, id string) (*grant.Signer, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	if cfg.Grants == nil {
		return nil, fmt.Errorf("%s has no grants section", cfgPath)
	}
	for _, k := range cfg.Grants.Keys {
		if k.ID != id {
			continue
		}
		if k.Alg != "HS256" {
			return nil, fmt.Errorf("key %q is %s: the config holds only its public key; sign with --alg %s --kid %s --private-key FILE", id, k.Alg, k.Alg, id)
		}
		path := k.SecretFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(cfgPath), path)
		}
		return grant.LoadSigner(id, "HS256", path)
	}
	return nil, fmt.Errorf("%s lists no grant key %q", cfgPath, id)
}

func runGrantKey(args []string) error {
	fl := flag.NewFlagSet("grant key", flag.ContinueOnError)
	alg := fl.String("alg", "EdDSA", "HS256, EdDSA or ES256")
	out := fl.String("out", "", "file name stem: NAME.key, or NAME.pem and NAME.pub.pem")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError{msg: "--out is required"}
	}
	priv, pub, err := grant.GenerateKey(*alg)
	if err != nil {
		return err
	}
	write := func(path string, b []byte, mode os.FileMode) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists: not overwriting a key", path)
			}
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
		fmt.Fprintln(os.Stderr, "switchboard: wrote", path)
		return f.Close()
	}
	if *alg == "HS256" {
		return write(*out+".key", priv, 0o600)
	}
	if err := write(*out+".pem", priv, 0o600); err != nil {
		return err
	}
	return write(*out+".pub.pem", pub, 0o644)
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config file: where (key path and
// position) and what.
type Problem struct {
	// Path is the key path, e.g. "limits.accept_timeout" or
	// "apps[0].listen"; empty for the file as a whole.
	Path string
	// Line and Column locate the key (1-based); 0 when unknown.
	Line, Column int
	// Msg says what is wrong, with a hint where there is one.
	Msg string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is every problem found in a config file, in file order. Decode
// and Load return it.
type Error struct {
	File     string // the file's path; empty for Decode
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "config %s: ", e.File)
	} else {
		b.WriteString("config: ")
	}
	if len(e.Problems) == 1 {
		b.WriteString(e.Problems[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// Decode reads a config strictly: unknown keys, values of the wrong type and
// trailing data are errors, and then the file is validated as a whole.
// Every problem is reported at once, each with its key path and
// line:column, as an *Error.
func Decode(r io.Reader) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	w := &walker{data: data, pos: map[string]int{}}
	if !w.check() {
		return nil, w.err() // a syntax error: nothing more can be said
	}
	// The walk recorded unknown keys and wrong types; decoding without it
	// skips those (encoding/json goes on past a type error), so the rest
	// of the file is validated too and every problem is told at once.
	var c File
	if err := json.Unmarshal(data, &c); err != nil && len(w.problems) == 0 {
		w.add("", 0, err.Error())
	}
	w.zeroLimits(&c)
	if verr := c.Validate(); verr != nil {
		for _, line := range strings.Split(verr.Error(), "\n") {
			w.addValidation(line)
		}
	}
	if len(w.problems) > 0 {
		return nil, w.err()
	}
	return &c, nil
}

// walker checks a JSON document against File's shape, recording the
// offset of every key path it meets.
type walker struct {
	data     []byte
	dec      *json.Decoder
	pos      map[string]int // key path → byte offset of its key
	problems []Problem
}

func (w *walker) err() error {
	sort.SliceStable(w.problems, func(i, j int) bool {
		a, b := w.problems[i], w.problems[j]
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	return &Error{Problems: w.problems}
}

// add records a problem at a byte offset (<0: no position).
func (w *walker) add(path string, off int, msg string) {
	p := Problem{Path: path, Msg: msg}
	if off >= 0 {
		p.Line, p.Column = lineCol(w.data, off)
	}
	w.problems = append(w.problems, p)
}

func lineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = off - bytes.LastIndexByte(before, '\n')
	return line, col
}

// check walks the document and reports whether it is well-formed JSON
// (its shape problems are recorded either way).
func (w *walker) check() bool {
	w.dec = json.NewDecoder(bytes.NewReader(w.data))
	w.dec.UseNumber()
	if err := w.value("", reflect.TypeFor[File]()); err != nil {
		w.syntax(err)
		return false
	}
	if _, err := w.dec.Token(); err != io.EOF {
		w.add("", int(w.dec.InputOffset()), "trailing data after the config object")
		return false
	}
	return true
}

// syntax records a JSON syntax error at its offset.
func (w *walker) syntax(err error) {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		w.add("", int(se.Offset), "JSON syntax: "+se.Error())
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		w.add("", len(w.data), "JSON syntax: the file ends early")
		return
	}
	w.add("", int(w.dec.InputOffset()), "JSON: "+err.Error())
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// value walks the next value, expected to be of type t. Errors returned
// are syntax errors that end the walk; shape problems are recorded.
func (w *walker) value(path string, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	isLeaf := reflect.PointerTo(t).Implements(unmarshalerType) ||
		(t.Kind() != reflect.Struct && !(t.Kind() == reflect.Slice && elemIsStruct(t)))
	start := int(w.dec.InputOffset())
	if isLeaf {
		var raw json.RawMessage
		if err := w.dec.Decode(&raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
			w.add(path, w.posOf(path, start), typeMsg(err, raw))
		}
		return nil
	}
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // null: the zero value
		return nil
	}
	want := json.Delim('{')
	if t.Kind() == reflect.Slice {
		want = '['
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		w.add(path, w.posOf(path, start), fmt.Sprintf("want %s, found %s", kindName(t), tokenName(tok)))
		return w.skipRest(tok)
	}
	if t.Kind() == reflect.Slice {
		for i := 0; w.dec.More(); i++ {
			ep := fmt.Sprintf("%s[%d]", path, i)
			w.pos[ep] = int(w.dec.InputOffset())
			if err := w.value(ep, t.Elem()); err != nil {
				return err
			}
		}
		_, err := w.dec.Token() // ']'
		return err
	}
	fields := jsonFields(t)
	for w.dec.More() {
		ktok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, _ := ktok.(string)
		koff := w.keyOffset()
		kp := key
		if path != "" {
			kp = path + "." + key
		}
		w.pos[kp] = koff
		ft, ok := fields[key]
		if !ok {
			w.add(kp, koff, unknownKeyMsg(key, fields))
			var skip json.RawMessage
			if err := w.dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if err := w.value(kp, ft); err != nil {
			return err
		}
	}
	_, err = w.dec.Token() // '}'
	return err
}

// keyOffset is the offset of the key just read: InputOffset is just after
// its closing quote.
func (w *walker) keyOffset() int {
	end := int(w.dec.InputOffset())
	i := end - 2
	for i >= 0 && !(w.data[i] == '"' && (i == 0 || w.data[i-1] != '\\')) {
		i--
	}
	if i < 0 {
		return end
	}
	return i
}

// posOf is the recorded offset of path, else fallback.
func (w *walker) posOf(path string, fallback int) int {
	if off, ok := w.pos[path]; ok {
		return off
	}
	return fallback
}

// skipRest skips the rest of a value whose first token was tok.
func (w *walker) skipRest(tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || d == '}' || d == ']' {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := w.dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

func elemIsStruct(t reflect.Type) bool {
	e := t.Elem()
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	return e.Kind() == reflect.Struct && !reflect.PointerTo(e).Implements(unmarshalerType)
}

// jsonFields maps the JSON keys of struct t to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// renamed are keys of earlier versions and what replaced them.
var renamed = map[string]string{
	"secret_sha256": "replaced by credential_hash, a hash of another form: make a new credential with `switchboard credential new`, or hash an existing secret with `switchboard credential hash`",
}

// unknownKeyMsg says a key is unknown, with the nearest known key as a
// hint when it is close.
func unknownKeyMsg(key string, fields map[string]reflect.Type) string {
	if r, ok := renamed[key]; ok {
		return "unknown key: " + r
	}
	best, bestD := "", 1<<30
	for k := range fields {
		if d := editDistance(strings.ToLower(key), k); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	if best != "" && bestD <= max(2, len(key)/3) {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", key, best)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprintf("unknown key %q (known here: %s)", key, strings.Join(keys, ", "))
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "a list"
	}
	return t.Kind().String()
}

func tokenName(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "a list"
		}
		return "an object"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprint(tok)
}

// typeMsg says why a leaf value did not decode, without Go type names
// where a plainer word exists.
func typeMsg(err error, raw json.RawMessage) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		want := ute.Type.String()
		switch ute.Type.Kind() {
		case reflect.Int, reflect.Int64, reflect.Int32:
			want = "an integer"
		case reflect.Bool:
			want = "true or false"
		case reflect.String:
			want = "a string"
		case reflect.Slice:
			want = "a list"
		}
		return fmt.Sprintf("want %s, found %s %s", want, ute.Value, truncate(string(raw), 40))
	}
	return err.Error()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// validationPath finds the key path a validation message is about: a
// leading "name[i]" (or "apps: apps[i]"), refined by a following
// "(x): key:" when that key exists.
var validationPath = regexp.MustCompile(`^(?:apps: )?([a-z_]+\[\d+\](?:\.[a-z_]+)?)(?: \([^)]*\))?:? (?:([a-z_.]+): )?`)

// addValidation records one line of Validate's error with the position of
// the path it names.
func (w *walker) addValidation(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	m := validationPath.FindStringSubmatch(line)
	if m == nil {
		for path := range w.pos { // a top-level key named first: "limits ..."
			if strings.HasPrefix(line, path+": ") { // "limits.window: ..."
				w.add(path, w.pos[path], strings.TrimPrefix(line, path+": "))
				return
			}
			if strings.HasPrefix(line, path+" ") && !strings.ContainsAny(path, ".[") {
				w.add(path, w.pos[path], strings.TrimPrefix(line, path+" "))
				return
			}
		}
		w.add("", -1, line)
		return
	}
	path, rest := m[1], line[len(m[0]):]
	if m[2] != "" {
		if _, ok := w.pos[path+"."+m[2]]; ok {
			path += "." + m[2]
		} else {
			rest = m[2] + ": " + rest
		}
	}
	off, ok := w.pos[path]
	if !ok {
		off = -1
	}
	w.add(path, off, rest)
}

package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// MaxBodyBytes is the largest request body either service reads; a larger
// one is refused with 413 Request Entity Too Large.
const MaxBodyBytes = 64 << 10

// RESTHandler returns the products REST API backed by s:
//
//	GET  /product       all products, a JSON array sorted by id
//	GET  /product/{id}  one product, or 404
//	POST /product       create from {"name", "price", "currency"?}: 201
//	                    with Location /product/{id} and the product
//
// POST accepts only application/json (charset utf-8 if any; else 415),
// bodies up to MaxBodyBytes (else 413), and exactly one JSON object whose
// keys are exactly "name", "price" and "currency", each at most once, with
// nothing after it (else 400). Other methods on those paths get 405 with
// an Allow header; other paths get 404. Every error is an RFC 9457 problem
// (application/problem+json with type "about:blank", title, status and
// detail). HEAD is served wherever GET is.
func RESTHandler(s *Store) http.Handler {
	if s == nil {
		panic("demo: RESTHandler: nil store")
	}
	h := &restHandler{store: s}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /product", h.list)
	mux.HandleFunc("POST /product", h.create)
	mux.HandleFunc("GET /product/{id}", h.get)
	// The method-less patterns are less specific than the ones above, so
	// they only see the methods those do not serve. They exist so that 405
	// and 404 are problem+json like every other error, not ServeMux's
	// plain text.
	mux.HandleFunc("/product", methodNotAllowed("GET, HEAD, POST"))
	mux.HandleFunc("/product/{id}", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no resource at this path")
	})
	return mux
}

type restHandler struct {
	store *Store
}

func (h *restHandler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.store.List())
}

func (h *restHandler) get(w http.ResponseWriter, r *http.Request) {
	p, err := h.store.Get(r.PathValue("id"))
	if err != nil {
		writeProblem(w, http.StatusNotFound, "product not found")
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (h *restHandler) create(w http.ResponseWriter, r *http.Request) {
	if err := checkMediaType(r.Header.Get("Content-Type"), "application/json"); err != nil {
		writeProblem(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			writeProblem(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	var p Product
	np, err := decodeNewProduct(body)
	if err == nil {
		p, err = h.store.Create(np)
	}
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		writeProblem(w, http.StatusBadRequest, verr.Field+" "+verr.Reason)
		return
	case errors.Is(err, ErrStoreFull):
		writeProblem(w, http.StatusInsufficientStorage, fmt.Sprintf("the demo store holds at most %d products", h.store.Max()))
		return
	case err != nil:
		// Decoding errors are client-facing messages by construction.
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Location", "/product/"+p.ID)
	writeJSON(w, http.StatusCreated, p)
}

// newProductJSON is the wire form of a NewProduct. Price is a pointer only
// to tell "missing" from 0 in the error message.
type newProductJSON struct {
	Name     string   `json:"name"`
	Price    *float64 `json:"price"`
	Currency string   `json:"currency"`
}

// decodeNewProduct parses body strictly. encoding/json alone would match
// keys case-insensitively and let a repeated key win silently; both are
// parser differentials that let a body mean one thing to a gateway's
// inspection and another here, so the keys are checked on the token stream
// first.
func decodeNewProduct(body []byte) (NewProduct, error) {
	if err := checkObjectKeys(body, "name", "price", "currency"); err != nil {
		return NewProduct{}, err
	}
	var in newProductJSON
	if err := json.Unmarshal(body, &in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return NewProduct{}, fmt.Errorf("%s must be a JSON %s", te.Field, jsonKind(te.Field))
		}
		return NewProduct{}, errors.New("malformed JSON")
	}
	if in.Price == nil {
		// Report the fields in order: a bad name before a missing price.
		if err := validateName(in.Name); err != nil {
			return NewProduct{}, err
		}
		return NewProduct{}, &ValidationError{Field: "price", Reason: "is required"}
	}
	return NewProduct{Name: in.Name, Price: *in.Price, Currency: in.Currency}, nil
}

func jsonKind(field string) string {
	if field == "price" {
		return "number"
	}
	return "string"
}

// checkObjectKeys reports whether body is exactly one JSON object whose
// keys are all in allowed, matched exactly, none repeated, with nothing but
// white space after it. Values are not checked here.
func checkObjectKeys(body []byte, allowed ...string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return errors.New("malformed JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("body must be a JSON object")
	}
	seen := make(map[string]bool, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("malformed JSON")
		}
		key, _ := tok.(string) // object keys are always strings
		known := false
		for _, a := range allowed {
			known = known || key == a
		}
		if !known {
			return fmt.Errorf("unknown field %s", strconv.Quote(key))
		}
		if seen[key] {
			return fmt.Errorf("duplicate field %s", strconv.Quote(key))
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return errors.New("malformed JSON")
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return errors.New("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

var errBodyTooLarge = fmt.Errorf("request body is larger than %d bytes", MaxBodyBytes)

// readBody reads the whole request body, at most MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errBodyTooLarge
		}
		return nil, errors.New("could not read the request body")
	}
	return b, nil
}

// checkMediaType accepts a Content-Type of the given media type with no
// parameter but an optional charset=utf-8.
func checkMediaType(header, want string) error {
	refuse := fmt.Errorf("Content-Type must be %s", want)
	if header == "" {
		return refuse
	}
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != want {
		return refuse
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return fmt.Errorf("Content-Type must be %s with no parameter but charset=utf-8", want)
		}
	}
	return nil
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeProblem(w, http.StatusMethodNotAllowed, "allowed methods: "+allow)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Products always marshal (their floats are finite); this is a
		// programming error, answered without leaking it.
		writeProblem(w, http.StatusInternalServerError, "could not encode the response")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// A problem is an RFC 9457 problem details object.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	b, _ := json.Marshal(problem{
		Type:   "about:blank", // RFC 9457 4.2.1: title is then the status phrase
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	})
	h := w.Header()
	h.Del("Location")
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

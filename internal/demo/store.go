// Package demo holds the example upstreams that `gatehouse demo` starts
// in-process so the gateway has something real to protect: a products REST
// API (RESTHandler) and a SOAP 1.1 document/literal ProductService with its
// WSDL (SOAPHandler), both backed by one in-memory Store.
//
// The package depends on no other Gatehouse package: the services behave
// like independent upstreams, and the gateway reaches them only over HTTP.
// Both services validate their input strictly and cap what a client can
// make them hold, because a demo that is reachable can be abused like any
// other service.
package demo

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Limits that apply to every product, whichever service creates it.
const (
	// DefaultMaxProducts is how many products a Store made by NewStore
	// holds at most, the seeded ones included.
	DefaultMaxProducts = 10000
	// MaxNameLen is the longest product name accepted, in characters
	// (Unicode code points).
	MaxNameLen = 200
	// MaxPrice is the highest price accepted. It keeps prices printable as
	// plain decimals (xs:decimal has no exponent form).
	MaxPrice = 1e9
	// DefaultCurrency is the currency of a new product that names none.
	DefaultCurrency = "EUR"
)

// A Product is one entry of the catalogue. Its JSON form is what the REST
// API speaks; the SOAP service carries the same four fields as elements of
// the same names.
type Product struct {
	// ID is assigned by the Store: "p-" followed by a decimal sequence
	// number ("p-1001"). It is never empty for a stored product.
	ID string `json:"id"`
	// Name is 1 to MaxNameLen characters, valid UTF-8, without control
	// characters, and not only white space.
	Name string `json:"name"`
	// Price is finite, greater than 0 and at most MaxPrice.
	Price float64 `json:"price"`
	// Currency is an ISO 4217-style code: three upper-case ASCII letters.
	Currency string `json:"currency"`
}

// A NewProduct is what a client supplies to create a Product: everything
// but the ID. An empty Currency means DefaultCurrency.
type NewProduct struct {
	Name     string
	Price    float64
	Currency string
}

// ErrNotFound is returned by Store.Get for an ID the store does not hold.
var ErrNotFound = errors.New("demo: product not found")

// ErrStoreFull is returned by Store.Create when the store already holds its
// maximum number of products.
var ErrStoreFull = errors.New("demo: product store is full")

// A ValidationError says which field of a NewProduct was refused and why.
// Both services show Field and Reason to the client.
type ValidationError struct {
	// Field is the JSON/XML name of the refused field: "name", "price" or
	// "currency".
	Field string
	// Reason is a short lower-case explanation, e.g. "is required".
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return "demo: invalid product: " + e.Field + " " + e.Reason
}

// Validate checks np and returns it normalized (an empty Currency becomes
// DefaultCurrency). The error, if any, is a *ValidationError about the
// first refused field in the order name, price, currency.
func (np NewProduct) Validate() (NewProduct, error) {
	if err := validateName(np.Name); err != nil {
		return np, err
	}
	if err := validatePrice(np.Price); err != nil {
		return np, err
	}
	if np.Currency == "" {
		np.Currency = DefaultCurrency
	}
	if err := validateCurrency(np.Currency); err != nil {
		return np, err
	}
	return np, nil
}

func validateName(name string) *ValidationError {
	switch {
	case strings.TrimSpace(name) == "":
		return &ValidationError{Field: "name", Reason: "is required"}
	case !utf8.ValidString(name):
		return &ValidationError{Field: "name", Reason: "must be valid UTF-8"}
	case utf8.RuneCountInString(name) > MaxNameLen:
		return &ValidationError{Field: "name", Reason: fmt.Sprintf("must be at most %d characters", MaxNameLen)}
	case strings.ContainsFunc(name, unicode.IsControl):
		// Control characters cannot all travel in XML 1.0, so a product
		// created over REST could not be returned over SOAP.
		return &ValidationError{Field: "name", Reason: "must not contain control characters"}
	}
	return nil
}

func validatePrice(price float64) *ValidationError {
	switch {
	case math.IsNaN(price) || math.IsInf(price, 0):
		return &ValidationError{Field: "price", Reason: "must be a finite number"}
	case price <= 0:
		return &ValidationError{Field: "price", Reason: "must be greater than 0"}
	case price > MaxPrice:
		return &ValidationError{Field: "price", Reason: "must be at most " + strconv.FormatFloat(MaxPrice, 'f', -1, 64)}
	}
	return nil
}

func validateCurrency(c string) *ValidationError {
	if !validCurrency(c) {
		return &ValidationError{Field: "currency", Reason: "must be three upper-case letters A-Z"}
	}
	return nil
}

func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// firstID is the sequence number of the first seeded product, so that IDs
// look like catalogue numbers ("p-1001") rather than array indexes.
const firstID = 1001

// seed is what NewStore starts with; the IDs follow from the order.
var seed = []NewProduct{
	{Name: "Espresso Machine", Price: 249.9, Currency: "EUR"},
	{Name: "Coffee Grinder", Price: 89.5, Currency: "EUR"},
	{Name: "Milk Frother", Price: 39.99, Currency: "USD"},
}

// A Store is a bounded in-memory product catalogue, safe for concurrent
// use. Products are never changed or removed once created. The zero value
// is not usable; make one with NewStore or NewBoundedStore.
type Store struct {
	mu   sync.RWMutex
	max  int            // immutable after construction
	byID map[string]int // index into list
	list []Product      // in creation order, which is ID order
	next int            // sequence number of the next product
}

// NewStore returns a Store seeded with three sample products (IDs p-1001,
// p-1002 and p-1003) that holds at most DefaultMaxProducts products.
func NewStore() *Store {
	return NewBoundedStore(DefaultMaxProducts)
}

// NewBoundedStore is NewStore with a different bound: the store holds at
// most max products, the seeded ones included, and Create fails with
// ErrStoreFull beyond that. max <= 0 means DefaultMaxProducts. The three
// seeded products are always present, even when max is smaller.
func NewBoundedStore(max int) *Store {
	if max <= 0 {
		max = DefaultMaxProducts
	}
	s := &Store{max: max, byID: make(map[string]int), next: firstID}
	for _, np := range seed {
		// The seed is valid by construction; insert skips the bound so
		// that a tiny bound still yields the documented sample products.
		s.insert(np)
	}
	return s
}

// Create validates np, stores it under a new ID and returns the stored
// product. It fails with a *ValidationError for invalid input and with
// ErrStoreFull when the store holds its maximum.
func (s *Store) Create(np NewProduct) (Product, error) {
	np, err := np.Validate()
	if err != nil {
		return Product{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.list) >= s.max {
		return Product{}, ErrStoreFull
	}
	return s.insert(np), nil
}

// insert stores a validated product; the caller holds s.mu or owns s.
func (s *Store) insert(np NewProduct) Product {
	p := Product{
		ID:       "p-" + strconv.Itoa(s.next),
		Name:     np.Name,
		Price:    np.Price,
		Currency: np.Currency,
	}
	s.next++
	s.byID[p.ID] = len(s.list)
	s.list = append(s.list, p)
	return p
}

// Get returns the product with the given ID, or ErrNotFound.
func (s *Store) Get(id string) (Product, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.byID[id]
	if !ok {
		return Product{}, ErrNotFound
	}
	return s.list[i], nil
}

// List returns a copy of all products sorted by ID in numeric order
// ("p-999" before "p-1000"), which is also the order of creation. The
// caller may modify the returned slice.
func (s *Store) List() []Product {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Product, len(s.list))
	copy(out, s.list)
	return out
}

// Len returns how many products the store holds.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.list)
}

// Max returns the most products the store will hold.
func (s *Store) Max() int {
	return s.max
}

package demo

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewStoreSeeds(t *testing.T) {
	s := NewStore()
	got := s.List()
	want := []Product{
		{ID: "p-1001", Name: "Espresso Machine", Price: 249.9, Currency: "EUR"},
		{ID: "p-1002", Name: "Coffee Grinder", Price: 89.5, Currency: "EUR"},
		{ID: "p-1003", Name: "Milk Frother", Price: 39.99, Currency: "USD"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("seeded products (-want +got):\n%s", diff)
	}
	if got := s.Max(); got != DefaultMaxProducts {
		t.Errorf("Max() = %d, want %d", got, DefaultMaxProducts)
	}
	// Two stores are independent and seeded alike.
	if _, err := s.Create(NewProduct{Name: "x", Price: 1}); err != nil {
		t.Fatal(err)
	}
	if got := NewStore().Len(); got != 3 {
		t.Errorf("a second NewStore holds %d products, want 3", got)
	}
}

func TestNewProductValidate(t *testing.T) {
	tests := []struct {
		name      string
		in        NewProduct
		want      NewProduct // when wantField is empty
		wantField string
	}{
		{name: "valid with currency", in: NewProduct{Name: "Tamper", Price: 19.5, Currency: "GBP"}, want: NewProduct{Name: "Tamper", Price: 19.5, Currency: "GBP"}},
		{name: "currency defaults to EUR", in: NewProduct{Name: "Tamper", Price: 19.5}, want: NewProduct{Name: "Tamper", Price: 19.5, Currency: "EUR"}},
		{name: "name of 200 characters", in: NewProduct{Name: strings.Repeat("é", 200), Price: 1}, want: NewProduct{Name: strings.Repeat("é", 200), Price: 1, Currency: "EUR"}},
		{name: "price at the maximum", in: NewProduct{Name: "a", Price: MaxPrice}, want: NewProduct{Name: "a", Price: MaxPrice, Currency: "EUR"}},
		{name: "empty name", in: NewProduct{Price: 1}, wantField: "name"},
		{name: "blank name", in: NewProduct{Name: " \t ", Price: 1}, wantField: "name"},
		{name: "name of 201 characters", in: NewProduct{Name: strings.Repeat("é", 201), Price: 1}, wantField: "name"},
		{name: "name with a control character", in: NewProduct{Name: "a\x00b", Price: 1}, wantField: "name"},
		{name: "name not UTF-8", in: NewProduct{Name: "a\xffb", Price: 1}, wantField: "name"},
		{name: "zero price", in: NewProduct{Name: "a"}, wantField: "price"},
		{name: "negative price", in: NewProduct{Name: "a", Price: -1}, wantField: "price"},
		{name: "NaN price", in: NewProduct{Name: "a", Price: math.NaN()}, wantField: "price"},
		{name: "infinite price", in: NewProduct{Name: "a", Price: math.Inf(1)}, wantField: "price"},
		{name: "price above the maximum", in: NewProduct{Name: "a", Price: MaxPrice * 1.5}, wantField: "price"},
		{name: "lower-case currency", in: NewProduct{Name: "a", Price: 1, Currency: "eur"}, wantField: "currency"},
		{name: "two-letter currency", in: NewProduct{Name: "a", Price: 1, Currency: "EU"}, wantField: "currency"},
		{name: "non-ASCII currency", in: NewProduct{Name: "a", Price: 1, Currency: "ÉUR"}, wantField: "currency"},
		{name: "name is checked before price", in: NewProduct{Price: -1}, wantField: "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Validate()
			if tt.wantField != "" {
				var verr *ValidationError
				if !errors.As(err, &verr) {
					t.Fatalf("Validate() error = %v, want a *ValidationError", err)
				}
				if verr.Field != tt.wantField {
					t.Errorf("Validate() refused field %q (%v), want %q", verr.Field, err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("Validate() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStoreCreateGet(t *testing.T) {
	s := NewStore()
	p, err := s.Create(NewProduct{Name: "Tamper", Price: 19.5})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	want := Product{ID: "p-1004", Name: "Tamper", Price: 19.5, Currency: "EUR"}
	if p != want {
		t.Errorf("Create() = %+v, want %+v", p, want)
	}
	got, err := s.Get("p-1004")
	if err != nil || got != want {
		t.Errorf("Get(p-1004) = %+v, %v; want %+v, nil", got, err, want)
	}
	if _, err := s.Get("p-9999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(p-9999) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Create(NewProduct{Name: "", Price: 1}); err == nil {
		t.Errorf("Create of an invalid product succeeded")
	}
	if got := s.Len(); got != 4 {
		t.Errorf("Len() after one valid and one invalid create = %d, want 4", got)
	}
	// List returns a copy: changing it does not change the store.
	l := s.List()
	l[0].Name = "changed"
	if got, _ := s.Get("p-1001"); got.Name != "Espresso Machine" {
		t.Errorf("changing List()'s result changed the store: %+v", got)
	}
}

func TestStoreListNumericOrder(t *testing.T) {
	// Enough products to cross from four to five digits: "p-10000" sorts
	// before "p-9999" as a string but must come after it.
	s := NewBoundedStore(9005)
	for i := 0; i < 9002; i++ {
		if _, err := s.Create(NewProduct{Name: "n" + strconv.Itoa(i), Price: 1}); err != nil {
			t.Fatalf("Create #%d: %v", i, err)
		}
	}
	l := s.List()
	if len(l) != 9005 {
		t.Fatalf("List() has %d products, want 9005", len(l))
	}
	for i, p := range l {
		if want := "p-" + strconv.Itoa(firstID+i); p.ID != want {
			t.Fatalf("List()[%d].ID = %q, want %q", i, p.ID, want)
		}
	}
}

func TestStoreBound(t *testing.T) {
	s := NewBoundedStore(5)
	for i := 0; i < 2; i++ {
		if _, err := s.Create(NewProduct{Name: "a", Price: 1}); err != nil {
			t.Fatalf("Create #%d: %v", i, err)
		}
	}
	if _, err := s.Create(NewProduct{Name: "a", Price: 1}); !errors.Is(err, ErrStoreFull) {
		t.Errorf("Create beyond the bound: error = %v, want ErrStoreFull", err)
	}
	// Validation comes first: an invalid product is invalid even when full.
	var verr *ValidationError
	if _, err := s.Create(NewProduct{Price: 1}); !errors.As(err, &verr) {
		t.Errorf("Create of an invalid product in a full store: error = %v, want a *ValidationError", err)
	}
	// A bound below the seed still yields the seed, and nothing more.
	tiny := NewBoundedStore(1)
	if got := tiny.Len(); got != 3 {
		t.Errorf("NewBoundedStore(1).Len() = %d, want 3", got)
	}
	if _, err := tiny.Create(NewProduct{Name: "a", Price: 1}); !errors.Is(err, ErrStoreFull) {
		t.Errorf("Create in NewBoundedStore(1): error = %v, want ErrStoreFull", err)
	}
	if got := NewBoundedStore(0).Max(); got != DefaultMaxProducts {
		t.Errorf("NewBoundedStore(0).Max() = %d, want %d", got, DefaultMaxProducts)
	}
}

// TestStoreConcurrent is meant for -race: writers and readers at once, and
// the bound must hold exactly however the creates interleave.
func TestStoreConcurrent(t *testing.T) {
	const (
		max        = 200
		writers    = 8
		perWriter  = 50 // 400 attempts for 197 free places
		readers    = 4
		readsEvery = 25
	)
	s := NewBoundedStore(max)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []Product
		full    int
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				p, err := s.Create(NewProduct{Name: "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i), Price: float64(i + 1)})
				mu.Lock()
				switch {
				case err == nil:
					created = append(created, p)
				case errors.Is(err, ErrStoreFull):
					full++
				default:
					t.Errorf("Create: %v", err)
				}
				mu.Unlock()
				if err == nil {
					if got, err := s.Get(p.ID); err != nil || got != p {
						t.Errorf("Get(%s) right after Create = %+v, %v; want %+v", p.ID, got, err, p)
					}
				}
			}
		}()
	}
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < readsEvery; i++ {
				l := s.List()
				if len(l) > max {
					t.Errorf("List() has %d products, more than the bound %d", len(l), max)
				}
				for j := 1; j < len(l); j++ {
					if idNum(l[j-1].ID) >= idNum(l[j].ID) {
						t.Errorf("List() out of order at %d: %s then %s", j, l[j-1].ID, l[j].ID)
						break
					}
				}
			}
		}()
	}
	wg.Wait()

	if got, want := len(created), max-len(seed); got != want {
		t.Errorf("%d creates succeeded, want %d", got, want)
	}
	if got, want := full, writers*perWriter-(max-len(seed)); got != want {
		t.Errorf("%d creates failed with ErrStoreFull, want %d", got, want)
	}
	if got := s.Len(); got != max {
		t.Errorf("Len() = %d, want %d", got, max)
	}
	ids := make(map[string]bool)
	for _, p := range created {
		if ids[p.ID] {
			t.Errorf("ID %s assigned twice", p.ID)
		}
		ids[p.ID] = true
	}
}

func idNum(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "p-"))
	if err != nil {
		return -1
	}
	return n
}

package router_test

import (
	"fmt"

	"github.com/gatehouse/gatehouse/internal/router"
)

func Example() {
	r, err := router.New([]router.Route[string]{
		{Name: "product", Path: "/product/{id}", Methods: []string{"GET"}, Value: "catalog"},
		{Name: "product-new", Path: "/product/new", Methods: []string{"GET"}, Value: "editor"},
		{Name: "api", Hosts: []string{"*.example.com"}, PathPrefix: "/api", Value: "api"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var buf [8]router.Param // reused across requests: Match does not allocate
	for _, req := range [][3]string{
		{"shop.test", "GET", "/product/42"},
		{"shop.test", "GET", "/product/new"},
		{"shop.test", "POST", "/product/42"},
		{"EU.Example.com:8443", "DELETE", "/api/v1/orders"},
		{"example.com", "GET", "/api"},
	} {
		m, params := r.Match(req[0], req[1], req[2], buf[:0])
		fmt.Printf("%s name=%q value=%q params=%v allow=%q\n", m.Result, m.Name, m.Value, params, m.Allow)
	}

	_, err = router.New([]router.Route[string]{
		{Name: "a", Path: "/p/{id}"},
		{Name: "b", Path: "/p/{pid}", Methods: []string{"GET"}},
	})
	fmt.Println(err)
	// Output:
	// found name="product" value="catalog" params=[{id 42}] allow=""
	// found name="product-new" value="editor" params=[] allow=""
	// method_not_allowed name="" value="" params=[] allow="GET, HEAD"
	// found name="api" value="api" params=[] allow=""
	// not_found name="" value="" params=[] allow=""
	// router: route 1 ("b") is ambiguous with route 0 ("a"): same path template ("/p/{pid}" and "/p/{id}" differ only in parameter names) on any host, route 0 takes the standard methods (no methods listed), GET included
}

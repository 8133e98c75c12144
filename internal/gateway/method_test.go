package gateway

import (
	"slices"
	"testing"
)

func TestIsOverrideField(t *testing.T) {
	for _, k := range []string{
		"X-Http-Method-Override", "X-HTTP-Method-Override", "x-http-method-override", "X_HTTP_Method_Override",
		"X_http_method_override", "x-http_method-OVERRIDE", "X-Http-Method", "X_HTTP_METHOD", "X-Method-Override", "x_method_override",
	} {
		if !isOverrideField(k) {
			t.Errorf("isOverrideField(%q) = false", k)
		}
	}
	for _, k := range []string{"X-Http-Method-Overrid", "X-Http-Methods", "X-Http-Method-Override2", "X-Method", "Method-Override", "X-Original-Method", ""} {
		if isOverrideField(k) {
			t.Errorf("isOverrideField(%q) = true", k)
		}
	}
}

func TestDropQueryParam(t *testing.T) {
	tests := []struct {
		q, kept string
		values  []string
	}{
		{"a=1&b=2", "a=1&b=2", nil},
		{"_method=DELETE", "", []string{"DELETE"}},
		{"a=1&_method=DELETE&b=2", "a=1&b=2", []string{"DELETE"}},
		{"%5Fmethod=PUT&a=%20", "a=%20", []string{"PUT"}},
		{"%5fmethod=PUT", "", []string{"PUT"}},
		{"_%6Dethod=PATCH", "", []string{"PATCH"}},
		{"a=1;_method=DELETE;b=2", "a=1;b=2", []string{"DELETE"}},
		{"_method=DELETE&_method=PUT", "", []string{"DELETE", "PUT"}},
		{"_method", "", []string{""}},
		{"_method=%zz", "", []string{"\x00"}},
		{"x_method=DELETE&_methods=1", "x_method=DELETE&_methods=1", nil},
		{"_method=DEL+ETE", "", []string{"DEL ETE"}},
	}
	for _, tc := range tests {
		kept, values, found := dropQueryParam(tc.q, overrideParam)
		if kept != tc.kept || !slices.Equal(values, tc.values) || found != (tc.values != nil) {
			t.Errorf("dropQueryParam(%q) = %q, %q, %v; want %q, %q", tc.q, kept, values, found, tc.kept, tc.values)
		}
	}
}

func TestOverrideMethod(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
	}{
		{[]string{"DELETE"}, "DELETE"},
		{[]string{"PUT", "PUT"}, "PUT"},
		{[]string{"PATCH"}, "PATCH"},
		{[]string{"DELETE", "PUT"}, ""},
		{[]string{"delete"}, ""},
		{[]string{"GET"}, ""},
		{[]string{"HEAD"}, ""},
		{[]string{"OPTIONS"}, ""},
		{[]string{"POST"}, ""},
		{[]string{"CONNECT"}, ""},
		{[]string{"TRACE"}, ""},
		{[]string{"DELETE "}, ""},
		{[]string{"DELETE,PUT"}, ""},
		{[]string{""}, ""},
		{nil, ""},
	} {
		got, ok := overrideMethod(tc.values)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("overrideMethod(%q) = %q, %v; want %q", tc.values, got, ok, tc.want)
		}
	}
}

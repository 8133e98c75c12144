package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdCompletion handles `gatehouse completion bash|zsh|fish`: it prints a
// completion script made from the command table and the commands' own
// flag sets, so it cannot fall behind the commands.
func cmdCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: gatehouse completion bash|zsh|fish")
		return 2
	}
	t := completionTree()
	switch args[0] {
	case "bash":
		fmt.Fprint(stdout, bashCompletion(t))
	case "zsh":
		fmt.Fprint(stdout, zshCompletion(t))
	case "fish":
		fmt.Fprint(stdout, fishCompletion(t))
	default:
		fmt.Fprintf(stderr, "gatehouse completion: unknown shell %q (bash, zsh or fish)\n", args[0])
		return 2
	}
	return 0
}

// compNode is one word of the command tree: its subcommands, or for a
// command its flags and positional words.
type compNode struct {
	name  string
	subs  []*compNode
	flags []string        // without dashes
	bools map[string]bool // the flags that take no value
	words []string
	help  string
}

func completionTree() *compNode {
	root := &compNode{}
	find := func(n *compNode, name string) *compNode {
		for _, s := range n.subs {
			if s.name == name {
				return s
			}
		}
		s := &compNode{name: name}
		n.subs = append(n.subs, s)
		return s
	}
	for i := range commands {
		c := &commands[i]
		n := root
		for _, w := range strings.Fields(c.path) {
			n = find(n, w)
		}
		n.help, _, _ = strings.Cut(c.summary, "\n")
		n.words = c.words
		if fs := c.flagSet(); fs != nil {
			fs.VisitAll(func(f *flag.Flag) { n.flags = append(n.flags, f.Name) })
			n.bools = boolFlags(fs)
		}
		n.flags = append(n.flags, "help")
	}
	for _, s := range root.subs {
		if s.name == "help" {
			for _, t := range root.subs {
				if t.name != "help" {
					s.words = append(s.words, t.name)
				}
			}
		}
	}
	return root
}

func names(ns []*compNode) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.name
	}
	return strings.Join(s, " ")
}

func dashed(flags []string) string {
	s := make([]string, len(flags))
	for i, f := range flags {
		s[i] = "--" + f
	}
	return strings.Join(s, " ")
}

// leafWords is what completes after a command: its flags and words.
func leafWords(n *compNode) string {
	return strings.TrimSpace(dashed(n.flags) + " " + strings.Join(n.words, " "))
}

func bashCompletion(t *compNode) string {
	var b strings.Builder
	b.WriteString(`# bash completion for gatehouse: source <(gatehouse completion bash)
_gatehouse() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    local words=""
    if [ "$COMP_CWORD" -eq 1 ]; then
        words="` + names(t.subs) + `"
    else
        case "${COMP_WORDS[1]}" in
`)
	for _, n := range t.subs {
		fmt.Fprintf(&b, "        %s)\n", n.name)
		if len(n.subs) == 0 {
			fmt.Fprintf(&b, "            words=%q ;;\n", leafWords(n))
			continue
		}
		fmt.Fprintf(&b, "            if [ \"$COMP_CWORD\" -eq 2 ]; then\n                words=%q\n            else\n                case \"${COMP_WORDS[2]}\" in\n", names(n.subs))
		for _, s := range n.subs {
			fmt.Fprintf(&b, "                %s) words=%q ;;\n", s.name, leafWords(s))
		}
		b.WriteString("                esac\n            fi ;;\n")
	}
	b.WriteString(`        esac
    fi
    # A flag's value (a file, a URL) falls back to file names (-o default).
    case "$cur" in
        -*|"") ;;
        *) case "${COMP_WORDS[COMP_CWORD-1]}" in --*) return ;; esac ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _gatehouse gatehouse
`)
	return b.String()
}

func zshCompletion(t *compNode) string {
	var b strings.Builder
	b.WriteString(`#compdef gatehouse
# zsh completion for gatehouse: gatehouse completion zsh > "${fpath[1]}/_gatehouse"
_gatehouse() {
    local -a choices
    if (( CURRENT == 2 )); then
        choices=(` + names(t.subs) + `)
    else
        case "${words[2]}" in
`)
	for _, n := range t.subs {
		fmt.Fprintf(&b, "        %s)\n", n.name)
		if len(n.subs) == 0 {
			fmt.Fprintf(&b, "            choices=(%s) ;;\n", leafWords(n))
			continue
		}
		fmt.Fprintf(&b, "            if (( CURRENT == 3 )); then\n                choices=(%s)\n            else\n                case \"${words[3]}\" in\n", names(n.subs))
		for _, s := range n.subs {
			fmt.Fprintf(&b, "                %s) choices=(%s) ;;\n", s.name, leafWords(s))
		}
		b.WriteString("                esac\n            fi ;;\n")
	}
	b.WriteString(`        esac
    fi
    if [[ "${words[CURRENT-1]}" == --* && "${words[CURRENT]}" != -* ]]; then
        _files
        return
    fi
    compadd -a choices
    _files
}
if [ "$funcstack[1]" = "_gatehouse" ]; then
    _gatehouse "$@"
else
    compdef _gatehouse gatehouse
fi
`)
	return b.String()
}

func fishCompletion(t *compNode) string {
	var b strings.Builder
	b.WriteString("# fish completion for gatehouse: gatehouse completion fish > ~/.config/fish/completions/gatehouse.fish\n")
	b.WriteString("complete -c gatehouse -f\n")
	for _, n := range t.subs {
		fmt.Fprintf(&b, "complete -c gatehouse -n __fish_use_subcommand -a %s -d %s\n", n.name, fishQuote(n.help))
		if len(n.subs) == 0 {
			fishLeaf(&b, "__fish_seen_subcommand_from "+n.name, n)
			continue
		}
		others := names(n.subs)
		for _, s := range n.subs {
			fmt.Fprintf(&b, "complete -c gatehouse -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s -d %s\n",
				n.name, others, s.name, fishQuote(s.help))
			fishLeaf(&b, "__fish_seen_subcommand_from "+n.name+"; and __fish_seen_subcommand_from "+s.name, s)
		}
	}
	return b.String()
}

func fishLeaf(b *strings.Builder, cond string, n *compNode) {
	for _, f := range n.flags {
		// Flags other than help take a value, often a file: -r -F.
		opts := "-r -F"
		if f == "help" || n.bools[f] {
			opts = ""
		}
		fmt.Fprintf(b, "complete -c gatehouse -n '%s' -l %s %s\n", cond, f, opts)
	}
	if len(n.words) > 0 {
		fmt.Fprintf(b, "complete -c gatehouse -n '%s' -a %s\n", cond, fishQuote(strings.Join(n.words, " ")))
	}
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// boolFlags returns the names of fs's flags that take no value.
func boolFlags(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			m[f.Name] = true
		}
	})
	return m
}

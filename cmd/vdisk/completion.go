package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// bashCompletion is urfave/cli v2's autocomplete/bash_autocomplete with the
// program name filled in: the shell asks `vdisk ... --generate-bash-completion`
// for the words that fit, and falls back to file names when there are none
// (-o default), which is what image and host path operands want. Unlike
// the original it works without the bash-completion package, and adds a
// space after a completed word (no -o nospace).
const bashCompletion = `# bash completion for %[1]s; load with: source <(%[1]s completion bash)

# Macs have bash3 for which the bash-completion package doesn't include
# _init_completion. This is a minimal version of it, which also works
# without the bash-completion package: it splits the line at blanks only,
# so that IMAGE@N:/path stays one word (COMP_WORDS splits it at ':').
_%[2]s_init_completion() {
  COMPREPLY=()
  if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
    _get_comp_words_by_ref "$@" cur prev words cword
  elif [[ -n "$COMP_LINE" ]]; then
    local line=${COMP_LINE:0:$COMP_POINT}
    read -ra words <<< "$line"
    cur=${line##*[[:space:]]}
    [[ -z "$cur" ]] && words+=("")
    cword=$(( ${#words[@]} - 1 ))
  else
    cur="${COMP_WORDS[COMP_CWORD]}"
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
}

_%[2]s_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts base words cword
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _%[2]s_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    # The word being completed goes along: %[1]s completes flags and
    # paths inside images (IMAGE@N:/EF -> IMAGE@N:/EFI/) from it.
    if [[ -n "$cur" ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    if [[ "$cur" == *:/* || "$cur" == *@ ]]; then
      # vdisk matched the names itself, case-insensitively as FAT does;
      # one per line, quoted for the shell (long names have blanks).
      local line
      while IFS= read -r line; do
        [[ -n "$line" ]] && COMPREPLY+=("$(printf '%%q' "$line")")
      done <<< "${opts}"
    else
      COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
    fi
    # A directory inside an image is completed with its slash: no space
    # after it, so the path can go on.
    if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == */ ]]; then
      compopt -o nospace 2>/dev/null
    fi
    # bash replaces only what follows the last ':' of the word.
    if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
      local colon_word=${cur%%"${cur##*:}"}
      COMPREPLY=("${COMPREPLY[@]#"$colon_word"}")
    fi
    return 0
  fi
}

complete -o bashdefault -o default -F _%[2]s_bash_autocomplete %[1]s
`

// zshCompletion is urfave/cli v2's autocomplete/zsh_autocomplete with the
// program name filled in; with no word to offer it completes file names.
const zshCompletion = `#compdef %[1]s
# zsh completion for %[1]s; load with: source <(%[1]s completion zsh)

_%[2]s_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ -n "$cur" ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" == "" ]]; then
    _files
  elif [[ "$cur" == *:/* || "$cur" == *@ ]]; then
    # Paths inside an image: as they are (':' is no description here),
    # and no space after a directory's slash.
    compadd -Q -S '' -- "${opts[@]}"
  else
    _describe 'values' opts
  fi
}

compdef _%[2]s_zsh_autocomplete %[1]s
`

func completionCommand() *cli.Command {
	return withUsage(&cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Commands and flags complete; operands complete as file names.

Examples:
   source <(vdisk completion bash)                     # this shell; ~/.bashrc for all
   vdisk completion zsh > "${fpath[1]}/_vdisk"
   vdisk completion fish > ~/.config/fish/completions/vdisk.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion: want one shell: bash, zsh or fish")
			}
			name := c.App.Name
			// A shell function name may not hold every character a
			// program name can.
			fn := strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
					return r
				}
				return '_'
			}, name)
			w := c.App.Writer
			switch shell := c.Args().First(); shell {
			case "bash":
				_, err := fmt.Fprintf(w, bashCompletion, name, fn)
				return err
			case "zsh":
				_, err := fmt.Fprintf(w, zshCompletion, name, fn)
				return err
			case "fish":
				// A fresh App: the running one has been set up, which
				// gave it and this command `help` subcommands that
				// would show up as completions.
				script, err := newApp().ToFishCompletion()
				if err != nil {
					return fmt.Errorf("completion fish: %w", err)
				}
				_, err = fmt.Fprint(w, script)
				return err
			default:
				return usagef("completion: unknown shell %q: want bash, zsh or fish", shell)
			}
		},
	})
}

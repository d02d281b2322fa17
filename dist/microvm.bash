# bash completion for microvm(1): options (from microvm --help), file names for the options
# that take them, user names for --user, and for --set the SECTION.KEY names that the
# machine given with --config accepts (microvm --config FILE --list-keys), then file names
# after the = of a path key and a UART's host sides after uartN.host=.

# _microvm_files [-d] WORD: file (or directory) names starting with WORD, one per reply entry
# even when they hold spaces
_microvm_files()
{
	local IFS=$'\n' kind=-f
	[[ $1 == -d ]] && kind=-d && shift
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen "$kind" -- "$1"))
}

_microvm()
{
	local line=${COMP_LINE:0:COMP_POINT}
	local cur=${line##*[[:space:]]}
	local -a words
	read -r -a words <<<"$line"
	[[ $line == *[[:space:]] ]] || unset 'words[${#words[@]}-1]'
	local prev=${words[${#words[@]} - 1]:-}
	local bin=${words[0]:-microvm} cfg= i
	[[ -x $bin ]] || bin=microvm
	for ((i = 1; i < ${#words[@]}; i++)); do
		case ${words[i]} in
		-c | --config) cfg=${words[i + 1]:-} ;;
		--config=*) cfg=${words[i]#--config=} ;;
		-c?*) cfg=${words[i]#-c} ;;
		esac
	done
	# The file name as the shell will see it: quotes and backslashes of the line removed.
	cfg=${cfg//\\/}
	cfg=${cfg//\"/}
	cfg=${cfg//\'/}
	cfg=${cfg/#\~/$HOME}
	# bash replaces only what follows the last = or : of the word; strip that much.
	local pre=${cur%"${cur##*[=:]}"}

	COMPREPLY=()
	case $cur in
	--config=* | --kernel=* | --initrd=* | --dump-dtb=* | --boot-report=*)
		_microvm_files "${cur#*=}"
		return
		;;
	--dump-acpi=*)
		_microvm_files -d "${cur#*=}"
		return
		;;
	esac
	case $prev in
	-c | --config | -k | --kernel | -i | --initrd | --dump-dtb | --boot-report)
		_microvm_files "$cur"
		return
		;;
	--dump-acpi)
		_microvm_files -d "$cur"
		return
		;;
	-u | --user)
		COMPREPLY=($(compgen -u -- "$cur"))
		return
		;;
	-a | --append)
		return
		;;
	-s | --set)
		if [[ $cur == *=* ]]; then
			case ${cur%%=*} in
			*.path | *.log | boot.kernel | boot.initrd) _microvm_files "${cur#*=}" ;;
			*.host) COMPREPLY=($(compgen -W "stdio file pty off" -- "${cur#*=}")) ;;
			esac
			return
		fi
		[[ -n $cfg && -r $cfg ]] || return
		local keys
		keys=$("$bin" --config "$cfg" --list-keys 2>/dev/null) || return
		compopt -o nospace 2>/dev/null
		COMPREPLY=($(compgen -W "$(printf '%s= ' $keys)" -- "$cur"))
		COMPREPLY=("${COMPREPLY[@]#"$pre"}")
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		local opts
		opts=$("$bin" --help 2>/dev/null | grep -o -- '--[a-z-]*' | sort -u)
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	fi
}
complete -F _microvm microvm

# bash completion for microvm(1): options (from microvm --help), file names for the options
# that take them, machine names for --config (microvm --list-machines), user names for
# --user, the words after a --disk's or --net's comma, and for --set the SECTION.KEY names
# that the line's machine accepts (microvm [--config FILE] [--set ...] --list-keys: its
# --config or the default machine, with the devices the line's --set, --disk and --net add),
# then after the = file names for a path key, or the words the key takes (--list-values).

# _microvm_files [-d] WORD: file (or directory) names starting with WORD, one per reply entry
# even when they hold spaces
_microvm_files()
{
	local IFS=$'\n' kind=-f
	[[ $1 == -d ]] && kind=-d && shift
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen "$kind" -- "$1"))
}

# _microvm_machines BIN WORD: file names, and the names of the machines BIN finds by name
_microvm_machines()
{
	_microvm_files "$2"
	[[ $2 == */* ]] && return
	local IFS=$'\n'
	COMPREPLY+=($(compgen -W "$("$1" --list-machines 2>/dev/null | cut -d' ' -f1)" -- "$2"))
}

_microvm()
{
	local line=${COMP_LINE:0:COMP_POINT}
	local cur=${line##*[[:space:]]}
	local -a words
	read -r -a words <<<"$line"
	[[ $line == *[[:space:]] ]] || unset 'words[${#words[@]}-1]'
	local prev=${words[${#words[@]} - 1]:-}
	local bin=${words[0]:-microvm} cfg= i w
	[[ -x $bin ]] || bin=microvm
	# The line's machine: its --config, and the words that add to it (as the shell will see
	# them: quotes and backslashes of the line removed).
	local -a machine=()
	for ((i = 1; i < ${#words[@]}; i++)); do
		w=${words[i + 1]:-}
		case ${words[i]} in
		-c | --config) cfg=$w ;;
		--config=*) cfg=${words[i]#--config=} ;;
		-c?*) cfg=${words[i]#-c} ;;
		-s | --set | --disk | --net | --cpus | --memory)
			((i + 1 < ${#words[@]})) && machine+=("${words[i]}" "$w") && ((i++)) ;;
		--set=* | --disk=* | --net=* | --cpus=* | --memory=*) machine+=("${words[i]}") ;;
		esac
	done
	machine=("${machine[@]//\\/}")
	machine=("${machine[@]//\"/}")
	machine=("${machine[@]//\'/}")
	cfg=${cfg//\\/}
	cfg=${cfg//\"/}
	cfg=${cfg//\'/}
	cfg=${cfg/#\~/$HOME}
	[[ -n $cfg ]] && machine=(--config "$cfg" "${machine[@]}")
	# bash replaces only what follows the last = or : of the word; strip that much.
	local pre=${cur%"${cur##*[=:]}"}

	COMPREPLY=()
	case $cur in
	--config=*)
		_microvm_machines "$bin" "${cur#*=}"
		return
		;;
	--kernel=* | --initrd=* | --dump-dtb=* | --boot-report=*)
		_microvm_files "${cur#*=}"
		return
		;;
	--dump-acpi=*)
		_microvm_files -d "${cur#*=}"
		return
		;;
	esac
	case $prev in
	-c | --config)
		_microvm_machines "$bin" "$cur"
		return
		;;
	-k | --kernel | -i | --initrd | --dump-dtb | --boot-report)
		_microvm_files "$cur"
		return
		;;
	--disk | --net)
		if [[ $cur == *,* ]]; then
			local opts="ro transport=mmio transport=pci"
			[[ $prev == --net ]] && opts="mac= transport=mmio transport=pci vhost=on"
			COMPREPLY=($(compgen -P "${cur%,*}," -W "$opts" -- "${cur##*,}"))
			COMPREPLY=("${COMPREPLY[@]#"$pre"}")
			[[ ${COMPREPLY[*]} == *= ]] && compopt -o nospace 2>/dev/null
		elif [[ $prev == --disk ]]; then
			_microvm_files "$cur"
		else
			COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))
		fi
		return
		;;
	--cpus | --memory)
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
	-s | --set | --list-values)
		local keys eq==
		if [[ $cur == *=* ]]; then
			case ${cur%%=*} in
			*.path | *.uds_path | *.log | boot.kernel | boot.initrd | machine.snapshot_dir)
				_microvm_files "${cur#*=}"
				;;
			*)
				keys=$("$bin" "${machine[@]}" --list-values "${cur%%=*}" 2>/dev/null)
				COMPREPLY=($(compgen -W "$keys" -- "${cur#*=}"))
				;;
			esac
			return
		fi
		# The keys are listed also when the machine is incomplete (exit status 2).
		keys=$("$bin" "${machine[@]}" --list-keys 2>/dev/null)
		[[ $prev == --list-values ]] && eq= || compopt -o nospace 2>/dev/null
		COMPREPLY=($(compgen -W "$(printf "%s$eq " $keys)" -- "$cur"))
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

# md2man.awk: turn docs/config.md (the machine description reference) into microvm.ini(5).
#
#   awk -v version=0.1.0 -v date=2026-11-29 -f man/md2man.awk docs/config.md > microvm.ini.5
#
# Optional: -v docdir=DIR/ is prefixed to links to other Markdown files (default "docs/").
#
# Handles the Markdown config.md uses: headings, paragraphs, `code`, **bold**, *italic*,
# [links](target), fenced code blocks, "- " and "1. " lists, and pipe tables (each row becomes
# a .TP entry). Portable awk: runs the same under mawk, gawk and busybox awk (no gensub, no
# regex intervals, no length(array), and no backslashes in sub/gsub replacements, whose
# meaning differs between implementations).

BEGIN {
	if (version == "")
		version = "unknown"
	if (date == "")
		date = "unknown"
	if (docdir == "")
		docdir = "docs/"
	print ".TH MICROVM.INI 5 \"" date "\" \"microvm " version "\" \"File Formats\""
	print ".SH NAME"
	print "microvm.ini \\- machine description for microvm(1)"
	print ".hw microvm"
	print ".SH DESCRIPTION"
	after_heading = 1	# nothing but a heading since the last text: no .PP needed
	pending_pp = 0		# a blank line was seen: the next text starts a paragraph
	in_code = 0
	in_table = 0
	in_list = 0
	dropped_title = 0
	bold = 0
	italic = 0
	# Non-ASCII characters config.md uses, as groff special characters.
	nmap = 0
	umap[++nmap] = "\342\200\223"; rmap[nmap] = "\\(en"	# en dash
	umap[++nmap] = "\342\211\245"; rmap[nmap] = "\\(>="	# greater-than or equal
	umap[++nmap] = "\303\227";     rmap[nmap] = "\\(mu"	# multiplication sign
	umap[++nmap] = "\342\211\244"; rmap[nmap] = "\\(<="	# less-than or equal
	umap[++nmap] = "\342\206\222"; rmap[nmap] = "\\(->"	# rightwards arrow
}

# Read the whole file once first, for the headings that #anchor links point to.
NR == 1 && FILENAME != "" && FILENAME != "-" {
	fence = 0
	while ((getline pl < FILENAME) > 0) {
		if (pl ~ /^[ \t]*```/) {
			fence = !fence
			continue
		}
		if (fence || pl !~ /^#+[ \t]/)
			continue
		lvl = heading_level(pl)
		t = plain(heading_text(pl))
		anchor["#" slug(t)] = (lvl <= 2) ? toupper(t) : t
	}
	close(FILENAME)
}

{
	sub(/\r$/, "")
	line = $0
}

# Inside a fenced code block: no inline conversion, only escaping.
in_code {
	if (line ~ /^[ \t]*```/) {
		print ".fi"
		print ".RE"
		in_code = 0
		pending_pp = 1
		after_heading = 0
		next
	}
	sub(/[ \t]+$/, "", line)
	if (line == "")
		print ".sp"
	else
		emit(code_esc(line))
	next
}

line ~ /^[ \t]*```/ {
	end_block()
	print ".PP"
	print ".RS 4"
	print ".nf"
	in_code = 1
	pending_pp = 0
	next
}

line ~ /^[ \t]*$/ {
	end_block()
	pending_pp = 1
	next
}

line ~ /^#+[ \t]/ {
	end_block()
	in_list = 0
	lvl = heading_level(line)
	t = plain(heading_text(line))
	pending_pp = 0
	if (lvl == 1 && !dropped_title) {
		dropped_title = 1	# the NAME section replaces the document title
		next
	}
	if (lvl <= 2) {
		t = esc(toupper(t))
		if (t ~ /[^A-Za-z0-9_-]/)
			t = "\"" t "\""
		print specials(".SH " t)
	} else {
		print specials(".SS \"" esc(t) "\"")
	}
	after_heading = 1
	next
}

line ~ /^[ \t]*[|]/ {
	table_row(line)
	next
}

# List items (top level).
line ~ /^[-*+][ \t]+/ || line ~ /^[0-9]+[.)][ \t]+/ {
	end_block()
	if (line ~ /^[-*+]/) {
		print ".IP \\(bu 2"
	} else {
		match(line, /^[0-9]+[.)]/)
		print ".IP " substr(line, 1, RLENGTH) " 4"
	}
	in_list_numbered = line ~ /^[0-9]/
	sub(/^[-*+0-9.)]+[ \t]+/, "", line)
	in_list = 1
	pending_pp = 0
	after_heading = 0
	text_line(line)
	next
}

# Anything else is paragraph text (or the continuation of a list item).
{
	if (in_table)
		end_block()
	if (pending_pp) {
		if (in_list && line ~ /^[ \t][ \t]/) {
			print ".IP \"\" " (in_list_numbered ? 4 : 2)	# another paragraph of the item
		} else {
			in_list = 0
			if (!after_heading)
				print ".PP"
		}
		pending_pp = 0
	}
	after_heading = 0
	text_line(line)
}

END {
	if (in_code) {
		print "md2man.awk: unterminated code block" > "/dev/stderr"
		print ".fi"
		print ".RE"
	}
	end_block()
	print ".SH SEE ALSO"
	print ".BR microvm (1)"
}

# ---- output ------------------------------------------------------------------------------

# Print one text line: no trailing blanks, and never read as a request.
function emit(s) {
	sub(/[ \t]+$/, "", s)
	sub(/^[ \t]+/, "", s)
	if (s == "")
		return
	s = nohyph(s)
	if (s ~ /^[.']/)
		s = "\\&" s
	# A line ending in "e.g." or ".." does not end a sentence (no wider space after it).
	if (s ~ /(e[.]g[.]|i[.]e[.]|[.][.])$/)
		s = s "\\&"
	print specials(s)
}

# A word holding code ("\\%" marks it) is never hyphenated: "\\%" goes to the word's start,
# since one inside a word would be a hyphenation point instead.
function nohyph(s,    out, w) {
	if (index(s, "\\%") == 0)
		return s
	out = ""
	while (s != "") {
		match(s, /^ */)
		out = out substr(s, 1, RLENGTH)
		s = substr(s, RLENGTH + 1)
		match(s, /^[^ ]*/)
		w = substr(s, 1, RLENGTH)
		s = substr(s, RLENGTH + 1)
		if (index(w, "\\%"))
			w = "\\%" replace(w, "\\%", "")
		out = out w
	}
	return out
}

function text_line(s) {
	emit(inline(s))
}

# End a paragraph, table or list item: fonts back to roman, tables closed.
function end_block() {
	if (bold || italic) {
		print "md2man.awk: line " NR ": unclosed emphasis" > "/dev/stderr"
		print ".ft R"
	}
	bold = italic = 0
	if (in_table) {
		in_table = 0
		pending_pp = 1	# text right after a table starts a new paragraph
	}
}

# ---- tables ------------------------------------------------------------------------------

function table_row(s,    cells, n, i, tag, body, dflt) {
	if (!in_table) {
		end_block()
		ncols = split_row(s, head)
		in_table = 1
		key_table = ncols == 4 && tolower(head[1]) == "key" && tolower(head[2]) == "type" &&
			tolower(head[3]) == "default" && tolower(head[4]) == "meaning"
		pending_pp = 0
		after_heading = 0
		return
	}
	if (s ~ /^[ \t|:-]+$/ && s ~ /-/)	# the | --- | --- | separator
		return
	n = split_row(s, cells)
	for (i = n + 1; i <= ncols; i++)
		cells[i] = ""
	print ".TP"
	tag = cell_text(cells[1])
	if (tag !~ /\\f/)
		tag = "\\fB" tag "\\fR"
	emit(tag)
	if (key_table) {
		body = ""
		if (cells[2] != "")
			body = "Type: " cell_text(cells[2]) period(cells[2])
		dflt = cells[3]
		if (dflt ~ /^required/)
			body = body " " cell_text(cap(dflt)) period(dflt)
		else if (dflt != "")
			body = body " Default: " cell_text(dflt) period(dflt)
		emit(body)
		if (cells[4] != "") {
			print ".br"
			emit(cell_text(cap(cells[4])) period(cells[4]))
		}
	} else if (ncols == 2) {
		emit(cell_text(cap(cells[2])) period(cells[2]))
	} else {
		body = ""
		for (i = 2; i <= ncols; i++) {
			if (cells[i] == "")
				continue
			# "Header: value." pieces; a table whose first header is empty (rows of
			# properties, columns of things) keeps its headers as written.
			body = body (body == "" ? "" : " ") \
				cell_text(head[1] == "" ? head[i] : cap(head[i])) ": " \
				cell_text(cells[i]) period(cells[i])
		}
		emit(body)
	}
}

# Split a table row into trimmed cells; "\|" and "|" inside a code span are not separators.
function split_row(s, cells,    n, i, c, cell, incode, len) {
	sub(/^[ \t]*[|]/, "", s)
	sub(/[ \t]+$/, "", s)
	if (s ~ /[|]$/ && s !~ /\\[|]$/)
		s = substr(s, 1, length(s) - 1)
	n = 0
	cell = ""
	incode = 0
	len = length(s)
	for (i = 1; i <= len; i++) {
		c = substr(s, i, 1)
		if (c == "\\" && substr(s, i + 1, 1) == "|") {
			cell = cell "|"
			i++
			continue
		}
		if (c == "`")
			incode = !incode
		if (c == "|" && !incode) {
			cells[++n] = trim(cell)
			cell = ""
			continue
		}
		cell = cell c
	}
	cells[++n] = trim(cell)
	return n
}

# One cell, converted on its own: fonts never leak into the next cell.
function cell_text(s,    out) {
	bold = italic = 0
	out = inline(s)
	if (bold || italic)
		out = out "\\fR"
	bold = italic = 0
	return out
}

# "." to end a cell's text unless it already ends a sentence.
function period(s) {
	return (s ~ /[.!?]$/) ? "" : "."
}

# Capitalise a cell that starts with a plain lower-case word ("the", "run-time"), not
# names such as "arm64" or "x86_64" or code.
function cap(s) {
	if (s ~ /^[a-z]+$/ || s ~ /^[a-z]+[ ,;:)-]/)
		return toupper(substr(s, 1, 1)) substr(s, 2)
	return s
}

# ---- inline Markdown ---------------------------------------------------------------------

function font() {
	if (bold && italic)
		return "\\f(BI"
	if (bold)
		return "\\fB"
	if (italic)
		return "\\fI"
	return "\\fR"
}

function inline(s,    out, n, i, c, d, j, k, rest, txt, tgt) {
	out = ""
	n = length(s)
	i = 1
	while (i <= n) {
		c = substr(s, i, 1)
		d = substr(s, i + 1, 1)
		# Markdown backslash escapes: \| \* \` ... are the character itself.
		if (c == "\\" && d != "" && index("\\`*_{}[]()#+-.!|<>~", d)) {
			out = out esc(d)
			i += 2
			continue
		}
		if (c == "`") {
			j = index(substr(s, i + 1), "`")
			if (j) {
				# \% : never hyphenate a name (each word of the span; see nohyph)
				out = out "\\fB\\%" replace(code_esc(substr(s, i + 1, j - 1)), " ", " \\%") font()
				i += j + 1
				continue
			}
		}
		if (c == "*" && d == "*") {
			rest = substr(s, i + 2)
			if (bold || (rest ~ /^[^ \t]/ && index(rest, "**"))) {
				bold = !bold
				out = out font()
				i += 2
				continue
			}
		} else if (c == "*") {
			rest = substr(s, i + 1)
			if ((italic && substr(s, i - 1, 1) ~ /[^ \t]/) ||
			    (!italic && rest ~ /^[^ \t*]/ && index(rest, "*"))) {
				italic = !italic
				out = out font()
				i++
				continue
			}
		}
		if (c == "[") {
			# [text](target): the text, plus where a local target lives.
			rest = substr(s, i + 1)
			k = index(rest, "](")
			if (k && index(substr(rest, 1, k - 1), "]") == 0) {
				j = index(substr(rest, k + 2), ")")
				if (j) {
					txt = substr(rest, 1, k - 1)
					tgt = substr(rest, k + 2, j - 1)
					out = out link(txt, tgt)
					i += k + 2 + j
					continue
				}
			}
		}
		out = out esc(c)
		i++
	}
	return out
}

function link(txt, tgt,    path, base, sect) {
	if (tgt ~ /^#/) {
		sect = (tgt in anchor) ? anchor[tgt] : ""
		if (sect == "")
			return inline(txt)
		if (tolower(plain(txt)) == tolower(sect))
			return "\\fB" esc(sect) "\\fR"
		return inline(txt) " (see \\fB" esc(sect) "\\fR)"
	}
	if (tgt ~ /^[A-Za-z][A-Za-z0-9+.-]*:/)	# URL: the text alone
		return inline(txt)
	path = tgt
	sub(/^[.][\/]/, "", path)
	if (path ~ /^[.][.][\/]/)
		sub(/^[.][.][\/]/, "", path)	# relative to the top of the project
	else
		path = docdir path
	base = tgt
	sub(/.*[\/]/, "", base)
	if (txt == tgt || txt == base || txt == path)
		return "\\fI" esc(path) "\\fR"
	return inline(txt) " (\\fI" esc(path) "\\fR)"
}

# ---- escaping ----------------------------------------------------------------------------

# Replace every occurrence of the string a by b (no regular expressions).
function replace(s, a, b,    out, k) {
	out = ""
	while ((k = index(s, a)) > 0) {
		out = out substr(s, 1, k - 1) b
		s = substr(s, k + length(a))
	}
	return out s
}

# Text for roff: a backslash is printed with \e. (Run before any escape of ours is added.)
function esc(s) {
	return replace(s, "\\", "\\e")
}

# The non-ASCII characters, on whole output lines: mawk works on bytes, and a character
# taken one at a time from a line is then only part of one.
function specials(s,    i) {
	for (i = 1; i <= nmap; i++)
		s = replace(s, umap[i], rmap[i])
	if (s ~ /[^\t -~]/)
		print "md2man.awk: line " NR ": non-ASCII character left as is" > "/dev/stderr"
	return s
}

# Code: as text, and "-" is a minus sign so that options can be copied.
function code_esc(s) {
	return replace(esc(s), "-", "\\-")
}

function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}

# ---- headings ----------------------------------------------------------------------------

function heading_level(s) {
	match(s, /^#+/)
	return RLENGTH
}

function heading_text(s) {
	sub(/^#+[ \t]+/, "", s)
	sub(/[ \t]+#*[ \t]*$/, "", s)
	return s
}

# A heading without Markdown: code marks and emphasis dropped, links reduced to their text.
function plain(s,    out, k, j, rest) {
	out = ""
	while ((k = index(s, "[")) > 0) {
		rest = substr(s, k + 1)
		j = index(rest, "](")
		if (j == 0 || index(substr(rest, 1, j - 1), "]") || index(substr(rest, j + 2), ")") == 0)
			break
		out = out substr(s, 1, k - 1) substr(rest, 1, j - 1)
		s = substr(rest, j + 2)
		s = substr(s, index(s, ")") + 1)
	}
	s = out s
	s = replace(s, "`", "")
	s = replace(s, "**", "")
	s = replace(s, "*", "")
	return s
}

# GitHub's anchor for a heading: lower case, punctuation dropped, spaces to "-".
function slug(s,    out, i, c) {
	s = tolower(s)
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == " ")
			out = out "-"
		else if (c ~ /[a-z0-9_-]/)
			out = out c
	}
	return out
}

# runbook host runner: one POSIX sh per host runs every command of a collection.
#
# It is sent over the SSH session's stdin (so the login shell parses nothing of
# it) and needs only sh, awk, od, setsid, sleep and kill: dash, bash and busybox
# all have them. It writes no file and holds next to nothing of a command's output.
#
# Requests, one line each on stdin:
#   r ID CAP KEEP raw CMD     run CMD, a line as it is
#   r ID CAP KEEP octal CMD   the same, every byte of CMD written as \ooo
#                             (KEEP=1 leaves what it started in the background;
#                             KEEP=2 also lets it outlive the channel)
#   k ID                      stop command ID (TERM, then KILL after 2 s); the
#                             operator's side sends it when the timeout, counted
#                             from the p frame, has passed
#   q                         exit (the caller has stopped what it wanted stopped)
# End of input (the channel closed) stops every command this runner started.
#
# Frames, one line each on stdout, each written whole by one write() of less than
# PIPE_BUF bytes into one pipe, so concurrent commands never interleave:
#   h 0 UID NPROC        the runner is up
#   p ID PGID            ID started, in its own process group
#   o ID HEX             a piece of ID's stdout, as od prints it (" 61 62 0a ...")
#   e ID HEX             the same for stderr
#   n ID o|e COUNT       bytes of the stream (add them up: past CAP, not sent)
#   s ID STATUS          ID's exit status
#   x ID                 nothing more will come for ID

LC_ALL=C LANG=C
export LC_ALL LANG

# A command's output is carried as hex (od): every byte exact, NUL and invalid
# UTF-8 included, and nothing holds more than one frame of it (32 od lines: up
# to 512 bytes of output), however long the command's lines are: awk reading the
# output itself would hold a whole line, and mawk reads a 50 MB line in minutes.
rb_frame='
BEGIN { take(first) }
{ take($0) }
function take(line, fields) {
	fields = split(line, unused, " ")
	if (sent < cap) {
		buf = buf line
		sent += fields
		if (++lines == 32) flush()
	}
	total += fields
}
function flush() {
	if (lines) {
		# One string, one write: frames of two commands never interleave.
		printf "%s", k " " id buf "\n"
		fflush()
		buf = ""
		lines = 0
	}
}
END {
	flush()
	printf "%s", "n " id " " k " " total "\n"
}'

# One command, as the leader of its own session and process group ($$), so a
# stop reaches everything it started. The job itself ignores TERM, to outlive
# the TERM it is sent and report what the command printed and how it ended. It
# costs five to seven short processes a command (this shell, two group shells,
# two od, an awk for each stream with output) besides the command's own: every
# process counts on a host whose run queue is the incident, and `ps` and `top`
# walk them all.
rb_job='
rb_id=$1 rb_cap=$2 rb_keep=$3 rb_cmd=$4
# A stream with nothing in it (most stderr) is framed without starting awk; the
# line read to find out is handed to awk, which goes on from the next one.
rb_frames() {
	IFS= read -r rb_first || { printf "n %s %s 0\n" "$rb_id" "$1"; return; }
	exec awk -v id="$rb_id" -v k="$1" -v cap="$rb_cap" -v first="$rb_first" "$rb_frame"
}
trap "" TERM
exec 9>&1
printf "p %s %s\n" "$rb_id" "$$"
{ { (trap - TERM; set --; eval "$rb_cmd") </dev/null 2>&4 4>&- 9>&-
	printf "s %s %s\n" "$rb_id" "$?" >&9
} | od -An -v -tx1 | rb_frames o >&9 4>&-
} 4>&1 | od -An -v -tx1 | rb_frames e
printf "x %s\n" "$rb_id"
# What the command left running in the background is stopped with it; the end
# of the session KILLs whatever ignores the TERM.
[ "$rb_keep" = 0 ] && kill -TERM -$$ 2>/dev/null
'
export rb_frame rb_job

rb_stop() {
	kill -TERM -"$1" 2>/dev/null || return 0
	sleep 2
	kill -KILL -"$1" 2>/dev/null
}

rb_main() {
	rb_groups=
	printf 'h 0 %s %s\n' "$(id -u 2>/dev/null)" "$(getconf _NPROCESSORS_ONLN 2>/dev/null)"
	while IFS=' ' read -r rb_op rb_id rb_cap rb_keep rb_form rb_cmd; do
		case $rb_op in
		r)
			case $rb_id$rb_cap$rb_keep in *[!0-9]* | '') continue ;; esac
			# Most commands come as they are; one with a newline comes as \ooo.
			if [ "$rb_form" = octal ]; then
				rb_cmd=$(printf "${rb_cmd}x")
				rb_cmd=${rb_cmd%x}
			fi
			setsid sh -c "$rb_job" rbjob "$rb_id" "$rb_cap" "$rb_keep" "$rb_cmd" \
				</dev/null 2>/dev/null &
			eval "rb_group_$rb_id=\$!"
			[ "$rb_keep" = 2 ] || rb_groups="$rb_groups $!"
			;;
		k)
			case $rb_id in *[!0-9]* | '') continue ;; esac
			eval "rb_pg=\${rb_group_$rb_id:-}"
			[ -n "$rb_pg" ] && rb_stop "$rb_pg" &
			;;
		q) return 0 ;;
		esac
	done
	# The channel closed under us: nothing started here may outlive it.
	for rb_pg in $rb_groups; do kill -TERM -"$rb_pg" 2>/dev/null; done
	sleep 1
	for rb_pg in $rb_groups; do kill -KILL -"$rb_pg" 2>/dev/null; done
}

rb_main | cat

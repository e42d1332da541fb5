# runbook host runner: one POSIX sh per host runs every command of a collection.
#
# It is sent over the SSH session's stdin (so the login shell parses nothing of
# it) and needs only sh, awk, od, setsid, sleep and kill: dash, bash and busybox
# all do. It writes no file and holds next to nothing of a command's output.
#
# Requests, one line each on stdin:
#   r ID TIMEOUT CAP KEEP CMD   run CMD (every byte written as \ooo); KEEP=1 leaves
#                               what the command started in the background running
#   k ID                        stop command ID (TERM, then KILL after 2 s)
#   q                           exit (the caller has stopped what it wanted stopped)
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
#   t ID                 ID's timeout passed on the host; it is being stopped
#   x ID                 nothing more will come for ID

LC_ALL=C LANG=C
export LC_ALL LANG

# A command's output is carried as hex (od): every byte exact, NUL and invalid
# UTF-8 included, and no tool ever holds more than a 16-byte line of it, however
# long the command's lines are (awk would hold a whole line, and mawk reads a
# 50 MB line in minutes). Frames carry 32 od lines: up to 512 bytes of output.
rb_frame='
{
	if (sent < cap) {
		buf = buf $0
		sent += NF
		if (++lines == 32) flush()
	}
	total += NF
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
# timeout or a stop reaches everything it started. The job itself ignores TERM,
# to outlive the TERM it sends and report what the command printed and how it
# ended. About a dozen short processes a command: fork and exec, no files.
rb_job='
id=$1 t=$2 cap=$3 keep=$4 cmd=$5
trap "" TERM
exec 9>&1
printf "p %s %s\n" "$id" "$$"
(trap - TERM; sleep "$t" >/dev/null 9>&-; trap "" TERM
	printf "t %s\n" "$id"; kill -TERM -$$; sleep 2; kill -KILL -$$) </dev/null 2>/dev/null &
watch=$!
{ { (trap - TERM; exec sh -c "$cmd") </dev/null 2>&4 4>&- 9>&-
	printf "s %s %s\n" "$id" "$?" >&9
} | od -An -v -tx1 | awk -v id="$id" -v k=o -v cap="$cap" "$rb_frame" >&9 4>&-
} 4>&1 | od -An -v -tx1 | awk -v id="$id" -v k=e -v cap="$cap" "$rb_frame"
kill -TERM "$watch" 2>/dev/null
printf "x %s\n" "$id"
# What the command left running in the background (and the watch'"'"'s sleep) is
# stopped with it; the end of the session KILLs whatever ignores the TERM.
[ "$keep" = 1 ] || kill -TERM -$$ 2>/dev/null
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
	while IFS=' ' read -r rb_op rb_id rb_t rb_cap rb_keep rb_cmd; do
		case $rb_op in
		r)
			case $rb_id$rb_cap$rb_keep in *[!0-9]* | '') continue ;; esac
			case $rb_t in *[!0-9.]* | '') continue ;; esac
			rb_cmd=$(printf "${rb_cmd}x")
			setsid sh -c "$rb_job" rbjob "$rb_id" "$rb_t" "$rb_cap" "$rb_keep" \
				"${rb_cmd%x}" </dev/null 2>/dev/null &
			eval "rb_group_$rb_id=\$!"
			rb_groups="$rb_groups $!"
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

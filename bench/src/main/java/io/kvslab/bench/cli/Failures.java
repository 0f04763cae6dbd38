package io.kvslab.bench.cli;

import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.bench.model.ModelFormatException;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.UnmatchedArgumentException;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import java.util.List;

/**
 * Every error of the command line becomes one line on stderr, {@code kvslab <command>: <what was wrong>}, and an
 * exit code: 2 for a mistake of the caller (unknown option, bad value, missing or unreadable file, a file that is
 * not what the option needs), 1 for an operation that failed. The stack trace is printed only with
 * {@code -v}/{@code --verbose} or the environment variable {@code KVSLAB_DEBUG=1}.
 */
final class Failures implements CommandLine.IParameterExceptionHandler, CommandLine.IExecutionExceptionHandler {
    static final int USAGE = 2;
    static final int FAILED = 1;

    @Override
    public int handleParseException(ParameterException ex, String[] args) {
        CommandLine cl = ex.getCommandLine();
        PrintWriter err = cl.getErr();
        err.println(prefix(cl) + parseMessage(ex));
        if (debug(cl)) {
            ex.printStackTrace(err);
        }
        err.flush();
        return USAGE;
    }

    @Override
    public int handleExecutionException(Exception ex, CommandLine cl, ParseResult parsed) {
        PrintWriter err = cl.getErr();
        Throwable cause = ex instanceof UncheckedIOException u ? u.getCause() : ex;
        int code = isUsage(cause) ? USAGE : FAILED;
        boolean expected = code == USAGE || cause instanceof KvSlabException || cause instanceof IOException
                || cause instanceof SnapshotCommand.CorruptFile;
        String message = cause instanceof NoSuchFileException n ? "no such file: " + n.getFile()
                : cause.getMessage() == null ? cause.getClass().getSimpleName() : cause.getMessage();
        err.println(prefix(cl) + message);
        if (debug(cl)) {
            ex.printStackTrace(err);
        } else if (!expected) {
            err.println(prefix(cl) + "(" + cause.getClass().getName() + "; run with -v or KVSLAB_DEBUG=1 for the "
                    + "stack trace)");
        }
        err.flush();
        return code;
    }

    private static boolean isUsage(Throwable t) {
        return t instanceof UsageException || t instanceof KvArgumentException || t instanceof ModelFormatException
                || t instanceof NoSuchFileException || t instanceof IllegalArgumentException;
    }

    /** "unknown option --quik (did you mean --quick?)" rather than picocli's multi-line default. */
    static String parseMessage(ParameterException ex) {
        if (ex instanceof UnmatchedArgumentException u && !u.getUnmatched().isEmpty()) {
            String arg = u.getUnmatched().getFirst();
            List<String> suggestions = u.getSuggestions();
            boolean option = arg.startsWith("-");
            boolean hasSubcommands = !ex.getCommandLine().getSubcommands().isEmpty();
            String what = option ? "unknown option " : hasSubcommands ? "unknown command " : "unexpected argument ";
            String hint = suggestions.isEmpty() ? ""
                    : " (did you mean " + String.join(" or ", suggestions.stream().limit(3).toList()) + "?)";
            String list = !option && hasSubcommands && suggestions.isEmpty()
                    ? "; commands: " + String.join(", ", ex.getCommandLine().getSubcommands().keySet()) : "";
            return what + arg + hint + list;
        }
        if (ex instanceof CommandLine.MissingParameterException
                && ex.getMessage().startsWith("Missing required subcommand")) {
            return "name a subcommand: " + String.join(", ", ex.getCommandLine().getSubcommands().keySet());
        }
        return ex.getMessage();
    }

    private static String prefix(CommandLine cl) {
        return cl.getCommandSpec().qualifiedName(" ") + ": ";
    }

    static boolean debug(CommandLine cl) {
        CommandLine root = cl;
        while (root.getParent() != null) {
            root = root.getParent();
        }
        return "1".equals(System.getenv("KVSLAB_DEBUG")) || root.<KvslabCommand>getCommand().verbose();
    }
}

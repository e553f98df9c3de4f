package dev.pet.runtime.data;

import java.io.BufferedReader;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * Raw wikitext-2/103 to plain text, with the detokenisation rules MindFormers (and Megatron) apply: number
 * separators ({@code " @-@ "} to {@code "-"}, {@code " @,@ "}, {@code " @.@ "}), spacing around punctuation and inside
 * brackets and quotes, heading markers ({@code "= = ="} to {@code "==="}), {@code " 's"} to {@code "'s"}. Articles
 * start at top-level headings ({@code " = Title = "}); sub-headings stay inside their article.
 */
public final class WikitextCleaner {
    /** Changes whenever the cleaning output changes, so token caches built with older rules are not reused. */
    public static final String VERSION = "wikitext-clean-1";

    private static final Pattern PARENS = Pattern.compile("\\(\\s*([^)]*?)\\s*\\)");
    private static final Pattern BRACKETS = Pattern.compile("\\[\\s*([^\\]]*?)\\s*]");
    private static final Pattern BRACES = Pattern.compile("\\{\\s*([^}]*?)\\s*}");
    private static final Pattern DOUBLE_QUOTES = Pattern.compile("\"\\s*([^\"]*?)\\s*\"");
    private static final Pattern SINGLE_QUOTES = Pattern.compile("'\\s*([^']*?)\\s*'");

    private WikitextCleaner() {
    }

    /** Applies the detokenisation rules to one article (or any text). */
    public static String clean(String text) {
        String s = text.replace("s '", "s'");
        s = s.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".");
        s = s.replace(" : ", ": ").replace(" ; ", "; ").replace(" . ", ". ").replace(" ! ", "! ")
                .replace(" ? ", "? ").replace(" , ", ", ");
        s = PARENS.matcher(s).replaceAll("($1)");
        s = BRACKETS.matcher(s).replaceAll("[$1]");
        s = BRACES.matcher(s).replaceAll("{$1}");
        s = DOUBLE_QUOTES.matcher(s).replaceAll("\"$1\"");
        s = SINGLE_QUOTES.matcher(s).replaceAll("'$1'");
        s = s.replace("= = = =", "====").replace("= = =", "===").replace("= =", "==");
        s = s.replace(" \u00b0 ", "\u00b0");
        s = s.replace(" \n", "\n").replace("\n ", "\n");
        s = s.replace(" N ", " 1 ");
        s = s.replace(" 's", "'s");
        return s;
    }

    /** Whether a raw line is a top-level heading ({@code " = Title = "}, not {@code " = = Section = = "}). */
    public static boolean isArticleHeading(String rawLine) {
        String t = rawLine.strip();
        return t.length() >= 5 && t.startsWith("= ") && t.endsWith(" =") && !t.startsWith("= =") && !t.endsWith("= =");
    }

    /**
     * Streams the articles of a raw wikitext file: each is its non-blank lines, with their original spacing, joined
     * by newlines, {@link #clean cleaned} (the rules expect the raw file's spaces around line ends), then stripped.
     * Text before the first heading forms an article of its own.
     */
    public static void articles(BufferedReader reader, Consumer<String> sink) throws IOException {
        List<String> lines = new ArrayList<>();
        String line;
        while ((line = reader.readLine()) != null) {
            if (isArticleHeading(line) && !lines.isEmpty()) {
                emit(lines, sink);
            }
            if (!line.isBlank()) {
                lines.add(line);
            }
        }
        if (!lines.isEmpty()) {
            emit(lines, sink);
        }
    }

    private static void emit(List<String> lines, Consumer<String> sink) {
        String article = clean(String.join("\n", lines)).strip();
        lines.clear();
        if (!article.isEmpty()) {
            sink.accept(article);
        }
    }
}

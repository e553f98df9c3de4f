package dev.pet.runtime.data;

import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WikitextCleanerTest {
    @Test
    void undoesWikitextNumberSeparatorsAndPunctuationSpacing() {
        assertEquals("a 1,000-year-old 3.5 m wall", WikitextCleaner.clean("a 1 @,@ 000 @-@ year @-@ old 3 @.@ 5 m wall"));
        assertEquals("Hello, world. Yes: no; why? Go! ", WikitextCleaner.clean("Hello , world . Yes : no ; why ? Go ! "));
        assertEquals("the game (2011) [ref] {x} \"quoted\"",
                WikitextCleaner.clean("the game ( 2011 ) [ ref ] { x } \" quoted \""));
        assertEquals("the team's", WikitextCleaner.clean("the team 's"));
        assertEquals("at 25\u00b0C", WikitextCleaner.clean("at 25 \u00b0 C"));
        assertEquals("in 1 years", WikitextCleaner.clean("in N years"));
    }

    @Test
    void joinsHeadingMarkers() {
        assertEquals("== Gameplay ==", WikitextCleaner.clean("= = Gameplay = ="));
        assertEquals("=== Plot ===", WikitextCleaner.clean("= = = Plot = = ="));
        assertEquals("==== Cast ====", WikitextCleaner.clean("= = = = Cast = = = ="));
    }

    @Test
    void recognisesOnlyTopLevelHeadings() {
        assertTrue(WikitextCleaner.isArticleHeading(" = Valkyria Chronicles III = "));
        assertFalse(WikitextCleaner.isArticleHeading(" = = Gameplay = = "));
        assertFalse(WikitextCleaner.isArticleHeading(" = = = Plot = = = "));
        assertFalse(WikitextCleaner.isArticleHeading(" The equation a = b = c holds "));
        assertFalse(WikitextCleaner.isArticleHeading(" "));
    }

    @Test
    void splitsArticlesAtTopLevelHeadingsKeepingSections() throws Exception {
        String raw = """
                \s
                 = Alpha =\s
                \s
                 Alpha is a 2 @,@ 000 @-@ page book .\s
                \s
                 = = History = =\s
                \s
                 It was written in N days .\s
                 = Beta =\s
                 Beta ( a letter ) follows alpha .\s
                """;
        List<String> articles = new ArrayList<>();
        WikitextCleaner.articles(new BufferedReader(new StringReader(raw)), articles::add);
        assertEquals(List.of(
                "= Alpha =\nAlpha is a 2,000-page book.\n== History ==\nIt was written in 1 days.",
                "= Beta =\nBeta (a letter) follows alpha."), articles);
    }
}

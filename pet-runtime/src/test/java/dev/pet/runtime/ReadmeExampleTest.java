package dev.pet.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's Java example, taken from README.md as written, compiles against the runtime and trains. */
class ReadmeExampleTest {
    @TempDir
    Path dir;

    @Test
    void theReadmesJavaExampleCompilesAndFineTunesOnASmallText() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"));
        Matcher block = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL).matcher(readme);
        assertTrue(block.find(), "README.md has a java block");
        String source = block.group(1);
        Matcher name = Pattern.compile("public class (\\w+)").matcher(source);
        assertTrue(name.find(), "the example is a whole class");
        Path src = dir.resolve("src/" + name.group(1) + ".java");
        Files.createDirectories(src.getParent());
        Files.writeString(src, source);
        Path classes = Files.createDirectories(dir.resolve("classes"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
        int rc = javac.run(null, diagnostics, diagnostics, "-d", classes.toString(),
                "-cp", System.getProperty("java.class.path"), src.toString());
        assertEquals(0, rc, "README example compiles: " + diagnostics.toString(StandardCharsets.UTF_8));

        // A short text, about the size of the quickstart's: small inputs work with the example's settings.
        Path corpus = dir.resolve("corpus.txt");
        Files.writeString(corpus, "The lamp was lit at dusk and the sea was calm. ".repeat(12));
        Path out = dir.resolve("out");
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        PrintStream saved = System.out;
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()},
                getClass().getClassLoader())) {
            Method main = loader.loadClass(name.group(1)).getMethod("main", String[].class);
            System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
            main.invoke(null, (Object) new String[] {corpus.toString(), out.toString()});
        } finally {
            System.setOut(saved);
        }
        String printed = stdout.toString(StandardCharsets.UTF_8);
        assertTrue(printed.contains("COMPLETED after "), printed);
        assertTrue(Files.isRegularFile(out.resolve("adapter/adapter_model.safetensors")), "adapter written");
        assertTrue(Files.isRegularFile(out.resolve("metrics.jsonl")));
    }
}

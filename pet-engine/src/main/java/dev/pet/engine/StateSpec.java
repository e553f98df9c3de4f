package dev.pet.engine;

import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * How a step graph is driven: the inputs fed each step (batch, learning rate, step, seed...) and the state carried
 * from one step to the next, each state input bound to the output that holds its next value.
 *
 * @param feeds    graph inputs supplied by the caller
 * @param bindings state inputs and the outputs that update them
 */
public record StateSpec(List<String> feeds, List<Binding> bindings) {
    /**
     * One carried tensor: the graph reads {@code input} and writes its next value to {@code output}.
     *
     * @param input  the graph input holding the current value
     * @param output the graph output holding the next value
     */
    public record Binding(String input, String output) {
        public Binding {
            Objects.requireNonNull(input, "input");
            Objects.requireNonNull(output, "output");
        }
    }

    public StateSpec {
        feeds = List.copyOf(feeds);
        bindings = List.copyOf(bindings);
        Set<String> inputs = new HashSet<>(feeds);
        if (inputs.size() != feeds.size()) {
            throw new EngineException("feeds are listed more than once: " + feeds);
        }
        Set<String> outputs = new HashSet<>();
        for (Binding b : bindings) {
            if (!inputs.add(b.input())) {
                throw new EngineException("input '" + b.input() + "' is bound twice (as a feed or as state)");
            }
            if (!outputs.add(b.output())) {
                throw new EngineException("output '" + b.output() + "' updates more than one state input");
            }
        }
    }

    /** A spec from feed names and alternating state input/output names. */
    public static StateSpec of(List<String> feeds, String... inputOutputPairs) {
        if (inputOutputPairs.length % 2 != 0) {
            throw new EngineException("state bindings come in input/output pairs, found "
                    + inputOutputPairs.length + " names");
        }
        Binding[] b = new Binding[inputOutputPairs.length / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = new Binding(inputOutputPairs[2 * i], inputOutputPairs[2 * i + 1]);
        }
        return new StateSpec(feeds, List.of(b));
    }
}

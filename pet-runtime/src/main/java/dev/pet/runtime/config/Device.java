package dev.pet.runtime.config;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Where to run: {@code cpu}, {@code cuda} (device 0) or {@code cuda:N}. */
public record Device(String kind, int index) {
    private static final Pattern SPEC = Pattern.compile("(cpu|cuda)(?::(\\d{1,3}))?");

    public Device {
        if (!"cpu".equals(kind) && !"cuda".equals(kind)) {
            throw new ConfigException("device", "unknown device kind '" + kind + "'; valid: cpu, cuda, cuda:N");
        }
        if (index < 0 || ("cpu".equals(kind) && index != 0)) {
            throw new ConfigException("device", "invalid device index " + index + " for " + kind);
        }
    }

    public static Device parse(String spec) {
        Matcher m = SPEC.matcher(spec.trim().toLowerCase(java.util.Locale.ROOT));
        if (!m.matches() || (m.group(1).equals("cpu") && m.group(2) != null)) {
            throw new ConfigException("device", "unknown value '" + spec + "'; valid choices: cpu, cuda, cuda:N");
        }
        return new Device(m.group(1), m.group(2) == null ? 0 : Integer.parseInt(m.group(2)));
    }

    public static Device cpu() {
        return new Device("cpu", 0);
    }

    public boolean isCuda() {
        return "cuda".equals(kind);
    }

    @Override
    public String toString() {
        return isCuda() && index != 0 ? kind + ":" + index : kind;
    }
}
